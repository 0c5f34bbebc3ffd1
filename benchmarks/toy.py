"""The toy task: cold FM (I-CFM, OT-CFM) and WS-FM on 2-D sets, scored by sliced Wasserstein."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ws_fm.data import ToyDataModule
from ws_fm.drafts import GaussianMixtureDraft
from ws_fm.metrics import sliced_wasserstein
from ws_fm.nets import MLP

if TYPE_CHECKING:
    from .engine import Profile, Run

__all__ = ["ToyTask"]


@dataclass(frozen=True)
class ToyTask:
    """The paper's synthetic setting: a 3x256 MLP on each toy set; the draft is a Gaussian
    mixture (``"gmm"``) fitted to the training points."""

    sets: tuple[str, ...] = ("checkerboard", "moons", "8gaussians", "spirals")
    n_train: int = 20_000
    hidden: int = 256
    depth: int = 3
    draft_components: int = 4
    rtol: float = 1e-5
    atol: float = 1e-5
    metric: str = "sliced_wasserstein"

    def datasets(self) -> tuple[str, ...]:
        return self.sets

    def datamodule(self, p: Profile, dataset: str) -> ToyDataModule:
        return ToyDataModule(
            dataset, n_train=self.n_train, n_test=p.n_eval, batch_size=p.batch_size, seed=p.seed
        )

    def network(self, p: Profile, dataset: str) -> nn.Module:
        return MLP(dim=2, hidden=self.hidden, depth=self.depth)

    def draft(self, p: Profile, dataset: str, name: str) -> nn.Module:
        if name != "gmm":
            raise ValueError(f"the toy task has one draft, 'gmm'; got {name!r}")
        return GaussianMixtureDraft(dim=2, n_components=self.draft_components, seed=p.seed)

    def refiner_kwargs(self, p: Profile) -> dict[str, Any]:
        return {"rtol": self.rtol, "atol": self.atol, "sample_shape": (2,)}

    def evaluator(self, p: Profile, dataset: str) -> SlicedWasserstein:
        return SlicedWasserstein(self.datamodule(p, dataset).test_data())

    def extras(self, p: Profile, run: Run) -> dict[str, Any]:
        """The metric's floor: ``n_eval`` training points against the held-out points."""
        floors = {}
        for ds in self.sets:
            dm = self.datamodule(p, ds)
            floors[ds] = sliced_wasserstein(dm.train_data()[: p.n_eval], dm.test_data())
        return {"real_vs_real": floors}


class SlicedWasserstein:
    """Sliced Wasserstein distance to the held-out points."""

    def __init__(self, test: torch.Tensor) -> None:
        self.test = test

    def quality(self, samples: torch.Tensor) -> float:
        return sliced_wasserstein(samples, self.test)

    def __call__(self, samples: torch.Tensor, source: torch.Tensor | None) -> dict[str, float]:
        return {"quality": self.quality(samples)}
