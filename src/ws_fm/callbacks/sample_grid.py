"""``SampleGridCallback``: image grids of the module's samples, to disk and to the logger."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from ..sampling import save_image_grid
from .schedule import epoch_due
from .weights import saved_weights

__all__ = ["SampleGridCallback"]


class SampleGridCallback(Callback):
    """Every ``every_n_epochs`` validation epochs, saves ``num_samples`` samples as a PNG grid
    (``<log_dir>/samples/step_<global_step>.png``, each image upscaled to at least 64 pixels) and
    logs it to TensorBoard-style loggers.  The samples come from the weights a checkpoint saves
    (the EMA weights where ``EMAWeightAveraging`` is on).

    Args:
        num_samples: images in the grid.
        nrow: images per row.
        every_n_epochs: how often.
        out_dir: folder for the PNGs (default: the trainer's log dir).
        solver, steps: sampling settings (default: the module's).
    """

    def __init__(
        self,
        num_samples: int = 64,
        nrow: int = 8,
        every_n_epochs: int = 1,
        out_dir: str | None = None,
        solver: str | None = None,
        steps: int | None = None,
    ) -> None:
        super().__init__()
        self.num_samples, self.nrow, self.every_n_epochs = num_samples, nrow, every_n_epochs
        self.out_dir, self.solver, self.steps = out_dir, solver, steps
        self.saved: list[Path] = []

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not epoch_due(trainer, self.every_n_epochs):
            return
        # trainer.log_dir is a collective under DDP: every rank asks, rank zero writes
        log_dir = trainer.log_dir
        if not trainer.is_global_zero:
            return
        with saved_weights(trainer, pl_module, self, "on_validation_epoch_end"):
            x = pl_module.sample(self.num_samples, solver=self.solver, steps=self.steps).samples
        folder = Path(self.out_dir or log_dir or trainer.default_root_dir) / "samples"
        path = save_image_grid(x, folder / f"step_{trainer.global_step:07d}.png", self.nrow)
        self.saved.append(path)
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_image"):
                from torchvision.io import read_image

                experiment.add_image("samples", read_image(str(path)), trainer.global_step)
