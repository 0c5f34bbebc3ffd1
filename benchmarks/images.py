"""The image task: PCA-Gaussian, VAE and GAN drafts, cold flows and WS-FM on a UNet, FID.

Scored by the classifier FID against the held-out split (and the mean distance to the nearest
training image, the memorisation figure); its extras are the drafts alone, Inception FID for the
reference and the best warm setting, and a grid of samples per method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from ws_fm.callbacks.fid import classifier_for
from ws_fm.couplings import nearest_indices
from ws_fm.data import ImageDataModule, load_labelled_images
from ws_fm.drafts import GANDraft, GaussianDraft, VAEDraft
from ws_fm.metrics.fid_features import InceptionFeatures
from ws_fm.nets import UNet
from ws_fm.speedup import within

if TYPE_CHECKING:
    from .engine import Profile, Run

__all__ = ["ImageTask", "FID", "nn_distance"]

DRAFTS: dict[str, type[nn.Module]] = {"gaussian": GaussianDraft, "vae": VAEDraft, "gan": GANDraft}


@dataclass(frozen=True)
class ImageTask:
    source: str = "digits"
    sample_shape: tuple[int, ...] = (1, 8, 8)
    unet_channels: int = 16
    channel_mults: tuple[int, ...] = (1, 2)
    n_real: int = 0  # held-out images for the FID's real statistics; 0: the whole test split
    inception_samples: int = 500  # 0 skips the Inception FID
    inception_real: int = 1000  # held-out images for its real statistics; 0: the whole split
    calibration_in_fid_features: bool = False  # calibrate_t0 in the FID features (else pixels)
    grid_samples: int = 32  # per method in <profile>_samples.png; 0: no grid
    metric: str = "fid_classifier"

    def datasets(self) -> tuple[str, ...]:
        return (self.source,)

    def datamodule(self, p: Profile, dataset: str) -> ImageDataModule:
        return ImageDataModule(dataset, batch_size=p.batch_size)

    def network(self, p: Profile, dataset: str) -> nn.Module:
        return UNet(
            in_channels=self.sample_shape[0],
            channels=self.unet_channels,
            channel_mults=self.channel_mults,
        )

    def draft(self, p: Profile, dataset: str, name: str) -> nn.Module:
        if name not in DRAFTS:
            raise ValueError(f"unknown image draft {name!r}; choose one of {', '.join(DRAFTS)}")
        return DRAFTS[name](self.sample_shape)

    def refiner_kwargs(self, p: Profile) -> dict[str, Any]:
        return {"sample_shape": self.sample_shape}

    def held_out(self, p: Profile) -> tuple[torch.Tensor, torch.Tensor]:
        """The held-out images for the real statistics (a fixed subset when ``n_real``), with
        their labels."""
        dm = ImageDataModule(self.source)
        test, labels = dm.test_data(), load_labelled_images(self.source)[3]
        if self.n_real:
            g = torch.Generator().manual_seed(p.seed)
            keep = torch.randperm(len(test), generator=g)[: self.n_real]
            test, labels = test[keep], labels[keep]
        return test, labels

    def evaluator(self, p: Profile, dataset: str) -> ImageScores:
        return ImageScores(
            FID(classifier_for(self.source), self.held_out(p)[0], device=p.device),
            ImageDataModule(self.source).train_data(),
        )

    def calibration_settings(self, p: Profile, dataset: str) -> dict[str, Any]:
        """The FID feature space (the classifier's features the quality is measured in) where
        ``calibration_in_fid_features``, else pixels.  Pixels by default: on digits the feature
        space chose t0 0.4-0.5 against the best swept 0.7-0.8 (pixels: 0.6) and cost the
        profile 74 s (results/digits-fid-feature-calibration.json)."""
        if not self.calibration_in_fid_features:
            return {}
        from .engine import evaluator

        return {"features": evaluator(p, self.source).fid.features}

    def extras(self, p: Profile, run: Run) -> dict[str, Any]:
        from .engine import evaluator

        scores = evaluator(p, self.source)
        train = scores.train
        test, labels = self.held_out(p)
        g = torch.Generator().manual_seed(p.seed)
        # As many real training images as generated samples, so that the FID's small-sample
        # bias is the same as the generated rows'.
        real = train[torch.randperm(len(train), generator=g)[: min(p.n_eval, len(train))]]
        drafts_alone = {}
        for (_, name), d in run.drafts.items():
            torch.manual_seed(p.seed)
            drafts_alone[name] = scores.fid(d.sample(p.n_eval))
        out: dict[str, Any] = {
            "real_vs_real": {self.source: scores.fid(real)},
            "real_nn_distance": nn_distance(test, train),
            "draft_only": drafts_alone,
            "classifier_test_accuracy": scores.fid.features.accuracy(test, labels),
            "inception": self.inception_fids(p, run, test) if self.inception_samples else [],
        }
        if self.grid_samples:
            out["sample_grids"] = self.sample_grids(p, run)
        return out

    def inception_fids(self, p: Profile, run: Run, test: torch.Tensor) -> list[dict[str, Any]]:
        """Inception FID of the reference (best cold flow, Euler) and of the best warm point."""
        ref = reference_row(p, run.rows)
        best = best_warm_row(p, run.rows, ref)
        if self.inception_real and self.inception_real < len(test):
            g = torch.Generator().manual_seed(p.seed)
            test = test[torch.randperm(len(test), generator=g)[: self.inception_real]]
        fid = FID(InceptionFeatures(), test, batch=50, device=p.device)
        out = []
        for r in (ref, best):
            out.append(
                {
                    **{k: r[k] for k in ("method", "t0", "coupling", "steps", "nfe")},
                    "draft": r.get("draft"),
                    "n_samples": self.inception_samples,
                    "n_real": len(test),
                    "fid_inception": fid(run.sample(r, self.inception_samples)),
                    "fid_classifier": r["quality"],
                }
            )
        return out

    def sample_grids(self, p: Profile, run: Run) -> dict[str, torch.Tensor]:
        """``grid_samples`` images per method: each draft alone, the reference, each draft's
        warm operating point (as in the results table) and each peer at 1 NFE."""
        ref = reference_row(p, run.rows)
        out: dict[str, torch.Tensor] = {}
        for (_, name), d in run.drafts.items():
            torch.manual_seed(p.seed)
            out[f"{name} draft alone"] = d.sample(self.grid_samples).cpu()
        n = self.grid_samples
        out[f"cold {ref['coupling']} Euler {ref['steps']}"] = run.sample(ref, n).cpu()
        for _, name in run.drafts:
            r = best_warm_row(p, run.rows, ref, name)
            label = f"WS-FM {name} {r['coupling']} t0={r['t0']} NFE {r['nfe']}"
            out[label] = run.sample(r, n).cpu()
        for r in run.rows:  # each peer at its fewest Euler steps (1 NFE)
            if "teacher" in r and r["solver"] == "euler" and r["steps"] == 1:
                out[f"{r['method']} NFE 1"] = run.sample(r, n).cpu()
        return out


class FID:
    """FID against held-out images with fixed real statistics (computed once)."""

    def __init__(
        self,
        features: nn.Module,
        real: torch.Tensor,
        batch: int = 250,
        device: torch.device | str = "cpu",
    ) -> None:
        self.features = features
        self.metric = FrechetInceptionDistance(
            feature=features, reset_real_features=False, normalize=True
        ).to(device)
        self.batch, self.device = batch, device
        for chunk in real.split(batch):
            self.metric.update(chunk.to(device), real=True)

    def __call__(self, fake: torch.Tensor) -> float:
        self.metric.reset()
        for chunk in fake.clamp(-1, 1).split(self.batch):
            self.metric.update(chunk.to(self.device), real=False)
        return float(self.metric.compute())


class ImageScores:
    """Classifier FID (the quality) and the nearest-training-image distance of each row."""

    def __init__(self, fid: FID, train: torch.Tensor) -> None:
        self.fid, self.train = fid, train

    def quality(self, samples: torch.Tensor) -> float:
        return self.fid(samples)

    def __call__(self, samples: torch.Tensor, source: torch.Tensor | None) -> dict[str, float]:
        return {"quality": self.fid(samples), "nn_distance": nn_distance(samples, self.train)}


def nn_distance(x: torch.Tensor, train: torch.Tensor) -> float:
    """Mean L2 distance from each sample to its nearest training image."""
    flat, ref = x.reshape(len(x), -1).cpu(), train.reshape(len(train), -1).cpu()
    return float((flat - ref[nearest_indices(flat, ref)]).norm(dim=1).mean())


def _mean(r: dict[str, Any]) -> float:
    return r.get("quality_mean", r["quality"])


def reference_row(p: Profile, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The best cold flow at the reference budget (Euler, ``reference_steps``), by seed mean."""
    cold = p.methods[0]
    refs = [
        r
        for r in rows
        if r["solver"] == "euler" and r["method"] == cold and r["steps"] == p.reference_steps
    ]
    return min(refs, key=_mean)


def best_warm_row(
    p: Profile, rows: list[dict[str, Any]], ref: dict[str, Any], draft: str | None = None
) -> dict[str, Any]:
    """The cheapest warm Euler row at parity (within 5% of ``ref``), else the best warm row."""
    warm = [
        r
        for r in rows
        if r["solver"] == "euler"
        and r["method"] == p.methods[1]
        and (draft is None or r.get("draft") == draft)
    ]
    judged = [r for r in warm if not r.get("screened_out") and not r.get("not_judged")]
    parity = [r for r in judged if within(_mean(r), _mean(ref))]
    if parity:
        return min(parity, key=lambda r: (r["nfe"], _mean(r)))
    return min(warm, key=_mean)
