"""``ValidityCallback``: exact validity of a token model's samples during training."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from ..lookups import datamodule_of
from .schedule import epoch_due
from .weights import saved_weights

__all__ = ["ValidityCallback"]


class ValidityCallback(Callback):
    """Every ``every_n_epochs`` validation epochs, draws ``num_samples`` samples per process
    (each rank from its own seed) and logs the fractions of the language's constraints that
    hold and of fully valid samples (``val/constraints``, ``val/valid``, averaged over ranks:
    every rank scores the same number), from the DataModule's ``language``
    (:class:`~ws_fm.data.StructuredTextDataModule`).  Rank zero appends a few decoded samples
    to ``<log_dir>/samples.txt``.

    Args:
        num_samples: samples per process.
        every_n_epochs: how often.
        steps: sampling steps of a refiner (default: its ``sample_steps``).
        show: decoded samples written per call.
    """

    def __init__(
        self,
        num_samples: int = 256,
        every_n_epochs: int = 1,
        steps: int | None = None,
        show: int = 4,
    ) -> None:
        super().__init__()
        self.num_samples, self.every_n_epochs = num_samples, every_n_epochs
        self.steps, self.show = steps, show
        self.last: dict[str, float] = {}  # this rank's scores and samples of the last call
        self.last_samples: torch.Tensor | None = None

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not epoch_due(trainer, self.every_n_epochs) or trainer.sanity_checking:
            return
        dm = datamodule_of(trainer)
        language = getattr(getattr(dm, "data", dm), "language", None)
        if language is None:
            raise ValueError(
                "ValidityCallback needs a DataModule with a language "
                "(ws_fm.data.StructuredTextDataModule)."
            )
        log_dir = trainer.log_dir  # a collective under DDP: every rank asks
        kwargs = {"steps": self.steps} if self.steps is not None else {}
        seed = 1000 * trainer.global_step + trainer.global_rank  # each rank its own samples
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with saved_weights(trainer, pl_module, self, "on_validation_epoch_end"):
            # refiners and drafts alike: the global generator, forked so training's is untouched
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                out = pl_module.sample(self.num_samples, **kwargs)  # type: ignore[operator]
        x = getattr(out, "samples", out).cpu()
        scores = language.scores(x)
        self.last, self.last_samples = scores, x
        for name in ("constraints", "valid"):
            pl_module.log(f"val/{name}", scores[name], sync_dist=True, prog_bar=name == "valid")
        if trainer.is_global_zero and self.show:
            marks = [
                "valid" if v else "invalid" for v in language.is_valid(x[: self.show]).tolist()
            ]
            lines = [f"- {s}  [{m}]" for s, m in zip(language.decode(x[: self.show]), marks)]
            folder = Path(log_dir or trainer.default_root_dir)
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / "samples.txt", "a") as f:
                f.write(f"# step {trainer.global_step}\n" + "\n".join(lines) + "\n\n")
