"""``FinalCheckpoint``: the trained model at a fixed path, written atomically at the end of fit.

Stage 2 of the image workflow points a refiner at a draft's checkpoint; a fixed path
(``runs/digits/draft_vae/draft.ckpt``) makes that a command that runs as written.  Unlike
``ModelCheckpoint`` it also saves models that take no optimizer steps (closed-form drafts).
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

__all__ = ["FinalCheckpoint"]


class FinalCheckpoint(Callback):
    """Saves ``trainer.save_checkpoint(path)`` when training ends (not under ``fast_dev_run``).

    The file is written beside ``path`` and renamed into place, so a reader never sees a partial
    checkpoint.

    Args:
        path: where the checkpoint goes.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = Path(path)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.strategy.barrier("final_checkpoint_dir")
        trainer.save_checkpoint(tmp)  # collective: every rank takes part, rank zero writes
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
        trainer.strategy.barrier("final_checkpoint")
