"""``ToyDataModule``: a toy 2-D set with a training split and a held-out split."""

from __future__ import annotations

from torch import Tensor

from .._checks import check_choice, check_positive_int
from .tensor_datamodule import TensorDataModule
from .toy import TOY_DATASETS, make_toy

__all__ = ["ToyDataModule"]


class ToyDataModule(TensorDataModule):
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
        super().__init__(batch_size=batch_size)
        self.dataset = check_choice(dataset, TOY_DATASETS, "dataset")
        self.n_train = check_positive_int(n_train, "n_train")
        self.n_test = check_positive_int(n_test, "n_test")
        if self.batch_size > self.n_train:
            raise ValueError(f"batch_size={batch_size} exceeds n_train={n_train}.")
        self.seed = seed

    def load(self) -> tuple[Tensor, Tensor]:
        return (
            make_toy(self.dataset, self.n_train, seed=self.seed),
            make_toy(self.dataset, self.n_test, seed=self.seed + 10_000),
        )
