"""When a per-validation-epoch callback is due."""

from __future__ import annotations

import lightning as L

__all__ = ["epoch_due"]


def epoch_due(trainer: L.Trainer, every_n_epochs: int, rank_zero_only: bool = False) -> bool:
    """True at the end of every ``every_n_epochs``-th validation epoch (never for 0 or less, or
    during the sanity check); with ``rank_zero_only``, only on global rank 0."""
    if trainer.sanity_checking or every_n_epochs <= 0:
        return False
    if rank_zero_only and not trainer.is_global_zero:
        return False
    return (trainer.current_epoch + 1) % every_n_epochs == 0
