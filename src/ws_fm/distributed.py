"""Process-group shutdown for DDP runs."""

from __future__ import annotations

import torch.distributed as dist

__all__ = ["shutdown_process_group"]


def shutdown_process_group() -> None:
    """Wait for every rank, then destroy the default process group.

    Lightning leaves the group alive after ``fit``; left to interpreter exit, gloo's threads can
    abort the process ("terminate called without an active exception") after a successful run.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
