"""``SampleTextCallback``: a few decoded samples of a token model, to disk and to the logger."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from ..lookups import tokenizer_of
from .schedule import epoch_due
from .weights import saved_weights

__all__ = ["SampleTextCallback"]


class SampleTextCallback(Callback):
    """Every ``every_n_epochs`` validation epochs, decodes ``num_samples`` samples with the
    DataModule's tokenizer, appends them to ``<log_dir>/samples.txt`` (one block per step),
    prints them and logs them to loggers with ``add_text``.  Works for refiners
    (``sample(n).samples``) and drafts (``sample(n)``).

    Args:
        num_samples: decoded samples per call.
        every_n_epochs: how often.
        out_dir: folder of ``samples.txt`` (default: the trainer's log dir).
        steps: sampling steps of a refiner (default: its ``sample_steps``).
        print_samples: print each block to the console (rank zero) as well.

    The samples come from the weights a checkpoint saves (EMA where it is on).
    """

    def __init__(
        self,
        num_samples: int = 4,
        every_n_epochs: int = 1,
        out_dir: str | None = None,
        steps: int | None = None,
        print_samples: bool = True,
    ) -> None:
        super().__init__()
        self.num_samples, self.every_n_epochs = num_samples, every_n_epochs
        self.out_dir, self.steps, self.print_samples = out_dir, steps, print_samples
        self.texts: list[str] = []

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not epoch_due(trainer, self.every_n_epochs):
            return
        # trainer.log_dir is a collective under DDP: every rank asks, rank zero writes
        log_dir = trainer.log_dir
        if not trainer.is_global_zero:
            return
        tok = tokenizer_of(trainer)
        if tok is None:
            raise ValueError(
                "SampleTextCallback needs a DataModule with a tokenizer (ws_fm.data.TextDataModule)."
            )
        kwargs = {"steps": self.steps} if self.steps is not None else {}
        with saved_weights(trainer, pl_module, self, "on_validation_epoch_end"):
            out = pl_module.sample(self.num_samples, **kwargs)  # type: ignore[operator]
        ids = getattr(out, "samples", out)
        self.texts = tok.decode_batch(ids.cpu().tolist())
        block = f"# step {trainer.global_step}\n" + "\n".join(f"- {t}" for t in self.texts)
        folder = Path(self.out_dir or log_dir or trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "samples.txt", "a") as f:
            f.write(block + "\n\n")
        if self.print_samples:
            rank_zero_info(block)
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_text"):
                experiment.add_text("samples", block, trainer.global_step)
