"""The one place where ws_fm's systems look things up on the Trainer and its DataModule.

A system (refiner, draft) may need the DataModule's training split (sample shape, fitting a
closed-form draft, a coupling's nearest-neighbour index) or its tokenizer.  DataModules that
wrap another one (``WarmStartDataModule``) expose the wrapped one's as their own.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

__all__ = ["datamodule_of", "train_data_of", "tokenizer_of"]


def datamodule_of(trainer: Any) -> Any:
    """``trainer.datamodule``, or None without a trainer or a DataModule."""
    return getattr(trainer, "datamodule", None) if trainer is not None else None


def train_data_of(trainer: Any) -> Tensor | None:
    """The training split of the trainer's DataModule, when it offers ``train_data()``."""
    fn = getattr(datamodule_of(trainer), "train_data", None)
    return fn() if callable(fn) else None


def tokenizer_of(trainer: Any) -> Any:
    """The tokenizer of the trainer's DataModule (``TextDataModule.tokenizer``), or None."""
    dm = datamodule_of(trainer)
    dm = getattr(dm, "data", dm)  # WarmStartDataModule wraps the text DataModule
    return getattr(dm, "tokenizer", None)
