"""DDP helpers: per-rank random streams, process-group shutdown, unused parameters."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "shutdown_process_group",
    "seed_rank",
    "rng_states",
    "restore_rng",
    "find_unused_parameters",
]


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


def rng_states() -> dict[str, Any]:
    """The process's random states (torch CPU and CUDA, numpy, Python), for a checkpoint."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    # plain types and tensors only, so that checkpoints load with torch.load(weights_only=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [
            str(name),
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "python": random.getstate(),
    }


def restore_rng(trainer: Any, states: dict[str, Any] | None) -> None:
    """Continue a resumed run's random streams where the checkpoint left them.

    In a single process the saved states are restored, so that a resumed run draws what the
    uninterrupted run would have drawn.  A checkpoint holds rank 0's states only, so under DDP
    each rank is instead reseeded from (its initial seed, its rank, the resumed step): the ranks
    keep distinct streams and the resume is reproducible, though not identical to an
    uninterrupted run.
    """
    if not states:
        return
    world = int(getattr(trainer, "world_size", 1) or 1)
    if world <= 1:
        torch.set_rng_state(states["torch"])
        if torch.cuda.is_available() and len(states.get("cuda", [])) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])
        name, keys, pos, has_gauss, cached = states["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        random.setstate(states["python"])
        return
    rank = int(getattr(trainer, "global_rank", 0) or 0)
    step = int(getattr(trainer, "global_step", 0) or 0)
    seed = (torch.initial_seed() + 1_000_003 * rank + 7_919 * step) % (2**32)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def find_unused_parameters(trainer: Any) -> None:
    """Under DDP, let parameters produce no gradient in a backward pass.  Systems that update
    one of two networks per backward (FGM's online flow and generator, a discriminator and its
    generator) call this from ``setup``, before Lightning wraps the module in DDP, so that
    ``--trainer.strategy=ddp`` works for them as for every other system (Lightning's advice for
    such systems is ``find_unused_parameters=True``)."""
    from lightning.pytorch.strategies import DDPStrategy

    strategy = getattr(trainer, "strategy", None)
    kwargs = getattr(strategy, "_ddp_kwargs", None)
    if isinstance(strategy, DDPStrategy) and isinstance(kwargs, dict):
        kwargs["find_unused_parameters"] = True
