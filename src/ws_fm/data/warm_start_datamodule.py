"""``WarmStartDataModule``: data plus a pre-cached bank of drafts, shared by every refiner.

Lifecycle under Lightning (also under DDP):

1. ``prepare_data`` (once per node, on local rank 0): takes the draft from the refiner being
   trained (``trainer.lightning_module.draft``), fits it first if it is a closed-form draft that
   is not fitted, and builds the :class:`~ws_fm.data.DraftBank` on disk unless a bank with the same
   fingerprint is there already.
2. ``setup`` (every rank): memory-maps the bank.  Lightning's distributed sampler gives each rank
   its shard of the batches.

Batches are ``{"x1": data, "draft": drafts}``; the refiner's coupling pairs them within the batch.
With ``nearest_neighbour=True`` the bank stores each draft's nearest training sample and batches
are those precomputed pairs, marked ``"paired"``.  With ``teacher_forced=True`` (token drafts,
DESIGN.md §1) the bank holds, for each training sequence ``x1``, the draft model run along ``x1``
(each token drawn given the real prefix), so ``xd`` is ``x1`` corrupted the way the draft errs;
batches are those pairs.  A cold refiner (no ``draft`` attribute) gets
plain data batches: the drafts are ignored and no bank is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .._checks import check_choice, check_positive_int
from .draft_bank import ON_STALE, DraftBank
from .tensor_datamodule import TensorDataModule

__all__ = ["WarmStartDataModule", "DataWithDrafts", "NearestNeighbourPairs"]


class DataWithDrafts(Dataset):
    """Item ``i``: the ``i``-th data sample and a uniformly drawn draft from the bank."""

    def __init__(self, data: Tensor, bank: DraftBank) -> None:
        self.data, self.bank = data, bank

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, idx: list[int]) -> dict[str, Tensor]:
        j = torch.randint(len(self.bank), (len(idx),))
        return {"x1": self.data[idx], "draft": self.bank.drafts(j)}

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"x1": self.data[i], "draft": self.bank[int(torch.randint(len(self.bank), ()))]}


class NearestNeighbourPairs(Dataset):
    """Item ``j``: the ``j``-th draft and its paired training sample (precomputed: the nearest
    neighbour, or the sequence a teacher-forced draft was made from)."""

    def __init__(self, data: Tensor, bank: DraftBank) -> None:
        if not bank.has_nearest_neighbours:
            raise ValueError(
                f"draft bank at {bank.path} has no nearest-neighbour pairs; rebuild it."
            )
        self.data, self.bank = data, bank

    def __len__(self) -> int:
        return len(self.bank)

    def __getitems__(self, idx: list[int]) -> dict[str, Any]:
        return {
            "x1": self.data[self.bank.nn_index(idx)],
            "draft": self.bank.drafts(idx),
            "paired": True,
        }

    def __getitem__(self, j: int) -> dict[str, Any]:
        return self.__getitems__([j])


def _identity(batch: Any) -> Any:
    return batch  # __getitems__ already returns a whole batch


class WarmStartDataModule(L.LightningDataModule):
    """Wraps a :class:`TensorDataModule` and a bank of drafts.

    Args:
        data: the data's DataModule (e.g. ``ImageDataModule``, ``ToyDataModule``).
        bank_size: number of drafts in the bank.
        bank_dir: folder of banks; this refiner's bank is ``<bank_dir>/<name>``.
        bank_name: the bank's folder name (default: the draft's class and the bank size).
        seed: seed of the draft draws.
        nearest_neighbour: precompute each draft's nearest training sample and serve those pairs.
        teacher_forced: pair each training sequence with the draft run along it (token drafts
            with ``teacher_force``); the bank covers the first ``bank_size`` training sequences.
        on_stale: ``rebuild`` (default) or ``error`` when the bank on disk came from another draft,
            seed or size, or is corrupt.
        chunk: drafts generated at a time while building.
    """

    def __init__(
        self,
        data: TensorDataModule,
        bank_size: int = 10_000,
        bank_dir: str = "draft_banks",
        bank_name: str | None = None,
        seed: int = 0,
        nearest_neighbour: bool = False,
        on_stale: str = "rebuild",
        chunk: int = 1024,
        teacher_forced: bool = False,
    ) -> None:
        super().__init__()
        self.data = data
        self.bank_size = check_positive_int(bank_size, "bank_size")
        self.bank_dir, self.bank_name = Path(bank_dir), bank_name
        if nearest_neighbour and teacher_forced:
            raise ValueError("choose one of nearest_neighbour and teacher_forced pairs.")
        self.seed, self.nearest_neighbour = seed, nearest_neighbour
        self.teacher_forced = teacher_forced
        self.on_stale = check_choice(on_stale, ON_STALE, "on_stale")
        self.chunk = chunk
        self.bank: DraftBank | None = None
        self.builds = 0  # banks built by this process (tests check it is built once under DDP)

    @property
    def provides_pairs(self) -> bool:
        return self.nearest_neighbour or self.teacher_forced

    # ------------------------------------------------------------------ delegation
    @property
    def batch_size(self) -> int:
        return self.data.batch_size

    def train_data(self) -> Tensor:
        return self.data.train_data()

    def test_data(self) -> Tensor:
        return self.data.test_data()

    def _draft(self) -> torch.nn.Module | None:
        module = self.trainer.lightning_module if self.trainer is not None else None
        return getattr(module, "draft", None)

    def bank_path(self, draft: torch.nn.Module) -> Path:
        inner = getattr(draft, "draft", draft)  # DraftCheckpoint wraps the loaded draft
        name = self.bank_name or f"{type(inner).__name__}-{self.bank_size}" + (
            "-nn" if self.nearest_neighbour else "-tf" if self.teacher_forced else ""
        )
        return self.bank_dir / name

    # ------------------------------------------------------------------ Lightning
    def prepare_data(self) -> None:
        draft = self._draft()
        if draft is None:
            return
        train = self.data.train_data()
        if hasattr(draft, "fit") and not getattr(draft, "is_fitted", True):
            draft.fit(train)
        path = self.bank_path(draft)
        before = (path / "meta.json").stat().st_mtime_ns if (path / "meta.json").exists() else None
        device = self.trainer.strategy.root_device if self.trainer is not None else "cpu"
        DraftBank.get(
            path,
            draft,
            self.bank_size,
            seed=self.seed,
            reference=train if self.provides_pairs else None,
            on_stale=self.on_stale,
            chunk=self.chunk,
            device=device,
            teacher_forced=self.teacher_forced,
        )
        after = (path / "meta.json").stat().st_mtime_ns
        self.builds += int(before != after)

    def setup(self, stage: str | None = None) -> None:
        self.data.setup(stage)
        draft = self._draft()
        if draft is not None and self.bank is None:
            path = self.bank_path(draft)
            if not path.exists():
                raise RuntimeError(f"draft bank {path} is missing: prepare_data() must run first.")
            self.bank = DraftBank(path)
            data_shape = tuple(self.data.train_data().shape[1:])
            if self.bank.sample_shape != data_shape:
                raise ValueError(
                    f"drafts in the bank at {path} have shape {self.bank.sample_shape} but the data "
                    f"has shape {data_shape}: the draft must be trained on the same data."
                )

    def train_dataloader(self) -> DataLoader:
        if self.bank is None:
            return self.data.train_dataloader()
        train = self.data.train_data()
        ds = (
            NearestNeighbourPairs(train, self.bank)
            if self.provides_pairs
            else DataWithDrafts(train, self.bank)
        )
        return DataLoader(
            ds, batch_size=self.batch_size, shuffle=True, drop_last=True, collate_fn=_identity
        )

    def val_dataloader(self) -> DataLoader:
        return self.data.val_dataloader()

    def test_dataloader(self) -> DataLoader:
        return self.data.test_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return self.data.predict_dataloader()
