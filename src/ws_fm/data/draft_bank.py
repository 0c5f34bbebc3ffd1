"""``DraftBank``: a fixed set of drafts generated once and stored on disk.

The bank is an Arrow data set written through ``datasets`` and memory-mapped when read, so RAM
does not grow with its size.  Layout of a bank folder::

    <path>/bank/...           the Arrow data set: column ``draft`` (flattened), and
                              ``nn_index`` (nearest training sample) when requested
    <path>/meta.json          fingerprint, sample shape, dtype, size, draft class

A bank is written to a temporary sibling folder and renamed into place only when complete, so an
interrupted build is never read (its leftovers are removed by the next build).  The fingerprint
hashes the draft's weights (its ``state_dict``), its class, the seed, the size and whether
nearest neighbours are stored: a bank made by another draft is detected, and either rebuilt or
refused (``on_stale``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import torch
from torch import Tensor, nn

from .._checks import check_choice, check_positive_int
from ..couplings import nearest_indices

__all__ = ["DraftBank", "draft_fingerprint"]

ON_STALE = ("rebuild", "error")


def draft_fingerprint(
    draft: nn.Module, seed: int, size: int, nearest_neighbour: bool, teacher_forced: bool = False
) -> str:
    """SHA-256 over the draft's class and weights, the seed, the size and the pairing mode."""
    h = hashlib.sha256()
    cls = type(draft)
    mode = f"{nearest_neighbour}" + ("|teacher_forced" if teacher_forced else "")
    h.update(f"{cls.__module__}.{cls.__qualname__}|{seed}|{size}|{mode}".encode())
    for name, tensor in sorted(draft.state_dict().items()):
        buf = io.BytesIO()
        # clone(): torch.save writes a view's whole storage, so equal tensors that are views of
        # different buffers (e.g. torch.unique's outputs) would hash differently.
        torch.save(tensor.detach().cpu().clone(), buf)
        h.update(name.encode())
        h.update(hashlib.sha256(buf.getvalue()).digest())
    return h.hexdigest()


class DraftBank(torch.utils.data.Dataset):
    """A memory-mapped bank of drafts; ``bank[i]`` is the ``i``-th draft as a tensor."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_file = self.path / "meta.json"
        try:
            self.meta: dict[str, Any] = json.loads(meta_file.read_text())
            self.data = datasets.load_from_disk(str(self.path / "bank")).with_format("torch")
        except (OSError, ValueError, FileNotFoundError) as err:
            raise ValueError(
                f"draft bank at {self.path} is incomplete or corrupt ({err}); delete the folder, or "
                "set on_stale='rebuild' to rebuild it."
            ) from err
        if len(self.data) != self.meta["size"]:
            raise ValueError(
                f"draft bank at {self.path} holds {len(self.data)} drafts but its metadata says "
                f"{self.meta['size']}: it is corrupt; delete it to rebuild."
            )
        self.sample_shape = tuple(self.meta["sample_shape"])

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    @property
    def has_nearest_neighbours(self) -> bool:
        return "nn_index" in self.data.column_names

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> Tensor:
        return self.data[int(i)]["draft"].reshape(self.sample_shape)

    def drafts(self, idx: Tensor | list[int]) -> Tensor:
        """A batch of drafts by index (one Arrow read)."""
        rows = self.data[list(map(int, idx))]["draft"]
        return rows.reshape(len(rows), *self.sample_shape)

    def nn_index(self, idx: Tensor | list[int]) -> Tensor:
        """Index of each draft's paired training sample (nearest neighbour, or the sequence a
        teacher-forced draft was made from)."""
        return self.data[list(map(int, idx))]["nn_index"]

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        path: str | Path,
        draft: nn.Module,
        size: int,
        seed: int = 0,
        reference: Tensor | None = None,
        chunk: int = 1024,
        device: torch.device | str = "cpu",
        progress: bool = True,
        teacher_forced: bool = False,
    ) -> DraftBank:
        """Generate ``size`` drafts in chunks and write the bank atomically.

        Args:
            path: the bank folder (replaced when it exists).
            draft: the generator, ``draft.sample(n)``.
            size: number of drafts.
            seed: seed of the draft's random draws.
            reference: training data; when given, each draft's nearest-neighbour index into it
                is stored as ``nn_index``.
            chunk: drafts generated and written at a time (bounds memory).
            device: where the draft samples.
            teacher_forced: instead of free samples, run the draft along each of the first
                ``size`` sequences of ``reference`` (``draft.teacher_force(x1)``: every token drawn
                from the draft's prediction given the real prefix); ``nn_index`` then holds the
                index of that sequence, so drafts and data come as pairs.
        """
        size = check_positive_int(size, "bank_size")
        if teacher_forced:
            if reference is None or not hasattr(draft, "teacher_force"):
                raise ValueError(
                    "teacher_forced banks need the training data (reference) and a draft with "
                    "teacher_force(x1), e.g. NGramDraft or LSTMDraft."
                )
            size = min(size, len(reference))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # leftovers of interrupted builds
        fingerprint = draft_fingerprint(
            draft, seed, size, reference is not None and not teacher_forced, teacher_forced
        )
        draft = draft.to(device)
        gen = torch.Generator(device=device).manual_seed(seed)
        probe = draft.sample(1, generator=torch.Generator(device=device).manual_seed(seed))
        shape, dtype = tuple(probe.shape[1:]), probe.dtype
        ref = reference.to(device) if reference is not None else None

        def rows() -> Iterator[dict[str, Any]]:
            from rich.progress import track

            starts = range(0, size, chunk)
            it = track(starts, description=f"building draft bank ({size})", disable=not progress)
            for start in it:
                n = min(chunk, size - start)
                if teacher_forced:
                    assert ref is not None
                    xd = draft.teacher_force(ref[start : start + n], generator=gen)
                    nn_idx: Tensor | None = torch.arange(start, start + n)
                else:
                    xd = draft.sample(n, generator=gen)
                    nn_idx = nearest_indices(xd, ref).cpu() if ref is not None else None
                flat = xd.reshape(n, -1).cpu()
                for i in range(n):
                    row: dict[str, Any] = {"draft": flat[i].numpy()}
                    if nn_idx is not None:
                        row["nn_index"] = int(nn_idx[i])
                    yield row

        value = "float32" if dtype.is_floating_point else "int64"
        features = {"draft": datasets.List(datasets.Value(value), length=int(probe[0].numel()))}
        if ref is not None:
            features["nn_index"] = datasets.Value("int64")
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        bars = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # the build shows its own progress
        try:
            with torch.no_grad():
                ds = datasets.Dataset.from_generator(
                    rows,
                    features=datasets.Features(features),
                    cache_dir=str(tmp / "cache"),
                    writer_batch_size=chunk,
                    fingerprint=fingerprint,
                )
            ds.save_to_disk(str(tmp / "bank"))
            del ds
            shutil.rmtree(tmp / "cache", ignore_errors=True)
            meta = {
                "fingerprint": fingerprint,
                "size": size,
                "seed": seed,
                "sample_shape": list(shape),
                "dtype": str(dtype),
                "draft_class": f"{type(draft).__module__}.{type(draft).__qualname__}",
                "nearest_neighbour": ref is not None and not teacher_forced,
                "teacher_forced": teacher_forced,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)  # atomic: the bank appears complete or not at all
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if bars:
                datasets.enable_progress_bars()
        return cls(path)

    @classmethod
    def get(
        cls,
        path: str | Path,
        draft: nn.Module,
        size: int,
        seed: int = 0,
        reference: Tensor | None = None,
        on_stale: str = "rebuild",
        teacher_forced: bool = False,
        **build_kwargs: Any,
    ) -> DraftBank:
        """The bank at ``path`` if it matches this draft, seed and size; else rebuild or raise."""
        check_choice(on_stale, ON_STALE, "on_stale")
        if teacher_forced and reference is not None:
            size = min(size, len(reference))
        expected = draft_fingerprint(
            draft, seed, size, reference is not None and not teacher_forced, teacher_forced
        )
        path = Path(path)
        if path.exists():
            try:
                bank = cls(path)
                if bank.fingerprint == expected:
                    return bank
                problem = (
                    f"draft bank at {path} was built from another draft, seed or size "
                    f"(fingerprint {bank.fingerprint[:12]}, expected {expected[:12]}; drafts by "
                    f"{bank.meta.get('draft_class')})"
                )
            except ValueError as err:
                problem = str(err)
            if on_stale == "error":
                raise ValueError(
                    f"{problem}. Delete it, point bank_dir elsewhere, or set on_stale='rebuild'."
                )
        return cls.build(
            path,
            draft,
            size,
            seed=seed,
            reference=reference,
            teacher_forced=teacher_forced,
            **build_kwargs,
        )
