"""``WarmStartDataModule``: data plus a pre-computed bank of drafts, shared by every refiner.

The refiner owns its draft and its coupling; this DataModule owns neither.  It receives the
generator explicitly (``generator=...``) or from the refiner being trained, which hands it over
through ``bank_generator()``, and it asks the refiner's coupling what the bank must hold
(:meth:`ws_fm.couplings.Coupling.bank_rows`: the drafts, plus the precomputed partner of each
for ``nearest_neighbour`` and ``teacher_forced``) and whether batches come paired.

Lifecycle under Lightning (also under DDP):

1. ``prepare_data`` (once per node, on local rank 0): fits a closed-form draft that is not fitted
   yet, and builds the :class:`~ws_fm.data.SampleBank` on disk unless a bank with the same
   fingerprint (generator weights and hyperparameters, coupling, seed, size) is there already.
2. ``setup`` (every rank): memory-maps the bank and checks it against the data.  Lightning's
   distributed sampler gives each rank its shard of the batches.

Batches are ``{"x1": data, "source": drafts}``, which the refiner's coupling pairs within the
batch, or, for a coupling whose pairs live in the bank, the precomputed pairs marked
``"paired": True``.  A cold refiner (no ``bank_generator``) gets plain data batches and no bank
is built.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .._checks import check_choice, check_positive_int
from .sample_bank import ON_STALE, SampleBank, generator_fingerprint
from .tensor_datamodule import TensorDataModule

__all__ = [
    "WarmStartDataModule",
    "DataWithSources",
    "PairedSources",
    "bank_fingerprint",
    "draft_bank",
]


class DataWithSources(Dataset):
    """Item ``i``: the ``i``-th data sample and a uniformly drawn source (draft) from the bank."""

    def __init__(self, data: Tensor, bank: SampleBank) -> None:
        self.data, self.bank = data, bank

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, idx: list[int]) -> dict[str, Tensor]:
        j = torch.randint(len(self.bank), (len(idx),))
        return {"x1": self.data[idx], "source": self.bank.column("source", j)}

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


class PairedSources(Dataset):
    """Item ``j``: the ``j``-th source and its precomputed partner: a row of the training data
    (``pair_index``: the nearest neighbour, or the sequence a teacher-forced draft was made
    from), or the bank's own ``target`` (a teacher's sample from that noise)."""

    def __init__(self, data: Tensor, bank: SampleBank) -> None:
        if "pair_index" not in bank.columns and "target" not in bank.columns:
            raise ValueError(
                f"sample bank at {bank.path} has neither a pair_index nor a target column; "
                "rebuild it."
            )
        self.data, self.bank = data, bank
        self.own_targets = "target" in bank.columns  # teacher pairs carry their endpoint

    def __len__(self) -> int:
        return len(self.bank)

    def __getitems__(self, idx: list[int]) -> dict[str, Any]:
        if self.own_targets:
            rows = self.bank.rows(idx, ("source", "target"))
            return {"x1": rows["target"], "source": rows["source"], "paired": True}
        rows = self.bank.rows(idx, ("source", "pair_index"))
        return {"x1": self.data[rows["pair_index"]], "source": rows["source"], "paired": True}

    def __getitem__(self, j: int) -> dict[str, Any]:
        return self.__getitems__([j])


def _identity(batch: Any) -> Any:
    return batch  # __getitems__ already returns a whole batch


def bank_fingerprint(generator: nn.Module, coupling: Any, seed: int, size: int) -> str:
    """What a draft bank depends on: the generator (weights and hyperparameters), how the
    coupling fills it (:meth:`~ws_fm.couplings.Coupling.bank_spec`), the seed and the size."""
    spec = {
        "generator": generator_fingerprint(generator),
        "coupling": coupling.bank_spec(),
        "seed": seed,
        "size": size,
        "layout": 2,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=repr).encode()).hexdigest()


def draft_bank(
    path: str | Path,
    generator: nn.Module,
    coupling: Any,
    size: int,
    reference: Tensor,
    seed: int = 0,
    on_stale: str = "rebuild",
    chunk: int = 1024,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> SampleBank:
    """The bank of ``generator``'s drafts for ``coupling`` at ``path``: reused when its
    fingerprint matches, else (re)built.  The coupling decides the rows
    (:meth:`~ws_fm.couplings.Coupling.bank_rows`) and the size (``teacher_forced``: at most one
    per training sequence of ``reference``)."""
    generator = generator.to(device)
    reference = reference.to(device)
    size = coupling.bank_size(size, reference)

    inner = getattr(generator, "draft", generator)  # DraftCheckpoint wraps the loaded draft
    info: dict[str, Any] = {
        "generator_class": f"{type(inner).__module__}.{type(inner).__qualname__}",
        "coupling": coupling.name or type(coupling).__name__,
    }

    def fill(start: int, n: int, rng: torch.Generator) -> dict[str, Tensor]:
        rows = coupling.bank_rows(generator, start, n, reference, rng)
        cost = getattr(generator, "generation_cost", None)
        if cost is not None:  # e.g. the teacher NFE and seconds spent on teacher pairs
            info["generation"] = dict(cost)  # written into meta.json once the bank is complete
        return rows

    return SampleBank.get(
        path,
        fill,
        size,
        bank_fingerprint(generator, coupling, seed, size),
        on_stale=on_stale,
        seed=seed,
        chunk=chunk,
        device=device,
        progress=progress,
        info=info,
    )


class WarmStartDataModule(L.LightningDataModule):
    """Wraps a :class:`TensorDataModule` and a bank of drafts.

    Args:
        data: the data's DataModule (e.g. ``ImageDataModule``, ``ToyDataModule``).
        bank_size: rows in the bank (a ``teacher_forced`` bank holds at most one per training
            sequence).
        bank_dir: folder of banks; this refiner's bank is ``<bank_dir>/<name>``.
        bank_name: the bank's folder name (default: the draft's class, the size and the coupling).
        seed: seed of the draft draws.
        on_stale: ``rebuild`` (default) or ``error`` when the bank on disk came from another
            draft, hyperparameters, coupling, seed or size, or is corrupt.
        chunk: drafts generated at a time while building.
        generator: the draft whose samples fill the bank; by default the refiner's own
            (``bank_generator()``).  Given here, it must be the refiner's draft.
        progress: show a progress bar while building the bank.
    """

    def __init__(
        self,
        data: TensorDataModule,
        bank_size: int = 10_000,
        bank_dir: str = "draft_banks",
        bank_name: str | None = None,
        seed: int = 0,
        on_stale: str = "rebuild",
        chunk: int = 1024,
        generator: nn.Module | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__()
        self.data = data
        self.bank_size = check_positive_int(bank_size, "bank_size")
        self.bank_dir, self.bank_name = Path(bank_dir), bank_name
        self.seed = seed
        self.on_stale = check_choice(on_stale, ON_STALE, "on_stale")
        self.chunk = chunk
        self.generator = generator
        self.progress = progress
        self.bank: SampleBank | None = None
        self.paired = False  # batches are the bank's precomputed pairs (set in setup)
        self.builds = 0  # banks built by this process (tests check it is built once under DDP)

    # ------------------------------------------------------------------ delegation
    @property
    def batch_size(self) -> int:
        return self.data.batch_size

    def train_data(self) -> Tensor:
        return self.data.train_data()

    def test_data(self) -> Tensor:
        return self.data.test_data()

    # ------------------------------------------------------------------ the bank's owners
    def _model(self) -> Any:
        return self.trainer.lightning_module if self.trainer is not None else None

    def bank_request(self, model: Any = None) -> tuple[nn.Module, Any] | None:
        """``(generator, coupling)`` of the bank for ``model`` (default: the refiner being
        trained), or None for a cold refiner (no bank)."""
        model = model if model is not None else self._model()
        from_model = model.bank_generator() if hasattr(model, "bank_generator") else None
        generator = self.generator if self.generator is not None else from_model
        if generator is None:
            return None
        if from_model is not None and generator is not from_model:
            if generator_fingerprint(generator) != generator_fingerprint(from_model):
                raise ValueError(
                    "WarmStartDataModule(generator=...) differs from the refiner's draft: the "
                    "refiner would train on one draft and sample from another. Leave generator "
                    "unset (the refiner hands over its draft) or pass the same draft."
                )
        coupling = getattr(model, "coupling", None)
        if coupling is None:
            raise ValueError(
                "a draft bank needs the refiner's coupling (model.coupling) to know what to store."
            )
        return generator, coupling

    def bank_path(self, generator: nn.Module, coupling: Any) -> Path:
        """``<bank_dir>/<bank_name>``, by default named after the draft, the number of rows the
        bank holds (the coupling may hold fewer than asked: one per training sequence for
        ``teacher_forced``) and, for precomputed pairs, the coupling."""
        inner = getattr(generator, "draft", generator)  # DraftCheckpoint wraps the loaded draft
        suffix = f"-{coupling.name}" if coupling.pairs_in_bank else ""
        size = coupling.bank_size(self.bank_size, self.data.train_data())
        return self.bank_dir / (self.bank_name or f"{type(inner).__name__}-{size}{suffix}")

    # ------------------------------------------------------------------ Lightning
    def prepare_data(self) -> None:
        self.prepare_bank()

    def prepare_bank(self, model: Any = None) -> SampleBank | None:
        """Build (or reuse) the bank for ``model``'s draft and coupling (default: the refiner
        being trained; ``prepare_data`` calls this).  Benchmarks call it with a refiner to build
        a bank once before several runs share it."""
        request = self.bank_request(model)
        if request is None:
            return None
        generator, coupling = request
        train = self.data.train_data()
        # Refuse a draft that cannot serve this data before any draft is drawn.
        model = model if model is not None else self._model()
        check = getattr(model, "check_draft_against", None)
        if check is not None:
            check(train, getattr(self.data, "tokenizer", None))
        if hasattr(generator, "fit") and not getattr(generator, "is_fitted", True):
            generator.fit(train)
        trainer = self.trainer if model is None else getattr(model, "_trainer", None)
        device = trainer.strategy.root_device if trainer is not None else "cpu"
        path = self.bank_path(generator, coupling)
        before = (path / "meta.json").stat().st_mtime_ns if (path / "meta.json").exists() else None
        bank = draft_bank(
            path,
            generator,
            coupling,
            self.bank_size,
            train,
            seed=self.seed,
            on_stale=self.on_stale,
            chunk=self.chunk,
            device=device,
            progress=self.progress,
        )
        after = (path / "meta.json").stat().st_mtime_ns
        self.builds += int(before != after)
        return bank

    def setup(self, stage: str | None = None) -> None:
        self.data.setup(stage)
        request = self.bank_request() if self.trainer is not None else None
        if request is None or self.bank is not None:
            return
        generator, coupling = request
        path = self.bank_path(generator, coupling)
        if not path.exists():
            raise RuntimeError(f"draft bank {path} is missing: prepare_data() must run first.")
        self.bank = SampleBank(path)
        self.paired = bool(coupling.pairs_in_bank)
        data_shape = tuple(self.data.train_data().shape[1:])
        if self.bank.shapes.get("source") != data_shape:
            raise ValueError(
                f"drafts in the bank at {path} have shape {self.bank.shapes.get('source')} but the "
                f"data has shape {data_shape}: the draft must be trained on the same data."
            )

    def train_dataloader(self) -> DataLoader:
        if self.bank is None:
            return self.data.train_dataloader()
        train = self.data.train_data()
        ds = PairedSources(train, self.bank) if self.paired else DataWithSources(train, self.bank)
        return DataLoader(
            ds, batch_size=self.batch_size, shuffle=True, drop_last=True, collate_fn=_identity
        )

    def val_dataloader(self) -> DataLoader:
        return self.data.val_dataloader()

    def test_dataloader(self) -> DataLoader:
        return self.data.test_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return self.data.predict_dataloader()
