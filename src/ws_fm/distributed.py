"""DDP helpers: per-rank random streams and process-group shutdown."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["shutdown_process_group", "seed_rank"]


def shutdown_process_group() -> None:
    """Wait for every rank, then destroy the default process group.

    Lightning leaves the group alive after ``fit``; left to interpreter exit, gloo's threads can
    abort the process ("terminate called without an active exception") after a successful run.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def seed_rank(trainer: Any) -> int | None:
    """Give this DDP rank its own random stream; returns the new seed (None on rank 0 or a single
    process, whose stream is left as it is).

    ``seed_everything`` gives every rank the same seed, so without this every rank draws the same
    noise, training times, bank indices and samples: the effective batch would hold
    ``world_size`` copies of one rank's randomness, and metrics that generate ``K / world_size``
    samples per rank would score repeated samples.  Rank ``r > 0`` is reseeded with a seed derived
    from the current one and ``r``, so runs stay reproducible, and a single-process run (or rank
    0) draws exactly what it drew before.
    """
    rank = int(getattr(trainer, "global_rank", 0) or 0)
    if int(getattr(trainer, "world_size", 1) or 1) <= 1 or rank == 0:
        return None
    seed = (torch.initial_seed() + 1_000_003 * rank) % (2**32)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    return seed
