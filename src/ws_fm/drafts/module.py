"""``DraftModule``: the LightningModule base of trained draft generators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor

from .._copy import SharesFactoriesOnCopy
from ..checkpoints import StandaloneCheckpoint
from ..lookups import train_data_of

__all__ = ["DraftModule", "ClosedFormDraft"]


class DraftModule(StandaloneCheckpoint, SharesFactoriesOnCopy, L.LightningModule):
    """A draft generator trained with Lightning; ``sample(n)`` makes ``n`` drafts in one pass.

    Its checkpoints record the class (``ws_fm.load(path)`` and :class:`DraftCheckpoint` read it).

    Args:
        sample_shape: per-sample shape of the data, e.g. ``(1, 8, 8)``.
    """

    def __init__(self, sample_shape: Sequence[int]) -> None:
        super().__init__()
        self.sample_shape = tuple(int(s) for s in sample_shape)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def setup(self, stage: str) -> None:
        train = train_data_of(self._trainer)
        if train is not None:
            got = tuple(train.shape[1:])
            if got != self.sample_shape:
                raise ValueError(
                    f"{type(self).__name__}(sample_shape={self.sample_shape}) does not match the "
                    f"data's shape {got}; set sample_shape to {list(got)}."
                )

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        n = batch.shape[0] if isinstance(batch, Tensor) else len(batch)
        return self.sample(n)


class ClosedFormDraft:
    """Mixin for drafts fitted in closed form (no gradient steps), e.g. ``GaussianDraft`` and
    ``NGramDraft``: subclasses implement ``fit(data)`` and ``is_fitted``.  ``setup`` fits an
    unfitted draft on the DataModule's training split; the training loop then stops after its
    first batch (no optimizer step is ever taken, so ``max_steps`` would never be reached), which
    still lets Lightning checkpoint the fitted draft."""

    def setup(self, stage: str) -> None:
        super().setup(stage)  # type: ignore[misc]
        train = train_data_of(self._trainer)  # type: ignore[attr-defined]
        if not self.is_fitted and train is not None:  # type: ignore[attr-defined]
            self.fit(train)  # type: ignore[attr-defined]

    def training_step(self, batch: Any, batch_idx: int) -> None:
        self.trainer.should_stop = True  # type: ignore[attr-defined]
        return None

    def configure_optimizers(self) -> None:
        return None
