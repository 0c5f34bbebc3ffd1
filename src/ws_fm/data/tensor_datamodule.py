"""``TensorDataModule``: the base of DataModules whose splits are in-memory tensors."""

from __future__ import annotations

import lightning as L
from torch import Tensor
from torch.utils.data import DataLoader

from .._checks import check_positive_int

__all__ = ["TensorDataModule"]


class TensorDataModule(L.LightningDataModule):
    """Serves ``(N, *shape)`` tensors as batches of plain tensors.

    Subclasses implement :meth:`load` returning ``(train, test)``.  :meth:`train_data` gives the
    whole training split (refiners use it to infer the sample shape, fit closed-form drafts and
    find nearest neighbours).  Under DDP, Lightning shards the loaders with a distributed sampler.

    Args:
        batch_size: per-process batch size.
        num_workers: DataLoader worker processes.
    """

    def __init__(self, batch_size: int = 128, num_workers: int = 0) -> None:
        super().__init__()
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.num_workers = num_workers
        self._train: Tensor | None = None
        self._test: Tensor | None = None

    def load(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._train is None:
            self._train, self._test = self.load()
            if self.batch_size > len(self._train):
                raise ValueError(
                    f"batch_size={self.batch_size} exceeds the {len(self._train)} training samples."
                )

    def train_data(self) -> Tensor:
        self.setup()
        assert self._train is not None
        return self._train

    def test_data(self) -> Tensor:
        self.setup()
        assert self._test is not None
        return self._test

    def _loader(self, data: Tensor, train: bool) -> DataLoader:
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_data(), train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.test_data(), train=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        # A refiner's predict_step draws as many samples as each batch holds.
        return self.val_dataloader()
