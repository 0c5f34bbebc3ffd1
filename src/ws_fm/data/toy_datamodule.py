"""``ToyDataModule``: a toy 2-D set with a training split and a held-out split."""

from __future__ import annotations

import lightning as L
from torch import Tensor
from torch.utils.data import DataLoader

from .._checks import check_choice, check_positive_int
from .toy import TOY_DATASETS, make_toy

__all__ = ["ToyDataModule"]


class ToyDataModule(L.LightningDataModule):
    """Batches of points from a toy set (``moons``, ``checkerboard``, ``8gaussians``, ``spirals``).

    The training and held-out splits are drawn with different seeds, so held-out points are
    unseen.  Batches are plain ``(B, 2)`` tensors.

    Args:
        dataset: toy set name.
        n_train: training points.
        n_test: held-out points (validation, test and the quality metric).
        batch_size: per-process batch size.
        seed: data seed.
    """

    def __init__(
        self,
        dataset: str = "checkerboard",
        n_train: int = 20_000,
        n_test: int = 5_000,
        batch_size: int = 512,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dataset = check_choice(dataset, TOY_DATASETS, "dataset")
        self.n_train = check_positive_int(n_train, "n_train")
        self.n_test = check_positive_int(n_test, "n_test")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        if self.batch_size > self.n_train:
            raise ValueError(f"batch_size={batch_size} exceeds n_train={n_train}.")
        self.seed = seed
        self.train: Tensor | None = None
        self.test: Tensor | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train is None:
            self.train = make_toy(self.dataset, self.n_train, seed=self.seed)
            self.test = make_toy(self.dataset, self.n_test, seed=self.seed + 10_000)

    def train_data(self) -> Tensor:
        """The whole training split (used to fit closed-form drafts and nearest neighbours)."""
        self.setup()
        assert self.train is not None
        return self.train

    def test_data(self) -> Tensor:
        self.setup()
        assert self.test is not None
        return self.test

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_data(), batch_size=self.batch_size, shuffle=True, drop_last=True
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.test_data(), batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
