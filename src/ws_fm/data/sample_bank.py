"""``SampleBank``: a fixed set of generated samples in named tensor columns, stored on disk.

After a generator (a draft model, a draft run teacher-forced along real data, or, for ReFlow and
distillation, a teacher flow pushing noise to samples) is trained, a fixed number of its samples
is generated once and stored, and refiners train against the bank instead of calling the
generator in the loop.  Columns are named: ``source`` (the drafts), ``pair_index`` (the training
row each source is paired with, for couplings whose pairs are precomputed), and whatever a later
generator adds (``target`` for teacher pairs).

The bank is an Arrow data set written through ``datasets`` and memory-mapped when read, so RAM
does not grow with its size.  Layout of a bank folder::

    <path>/bank/...           the Arrow data set, one flattened list column per named column
    <path>/meta.json          fingerprint, size, seed, column shapes and dtypes, checksums

A bank is written to a temporary sibling folder and renamed into place only when complete, so an
interrupted build is never read (its leftovers are removed by the next build).  Its fingerprint
(computed by the caller, e.g. :func:`generator_fingerprint` plus the coupling and the size) says
what made it: a bank made by another generator, with other hyperparameters, seed, size or
columns is detected and either rebuilt (saying why) or refused (``on_stale``).  A SHA-256 of the
Arrow files is checked on every open, so bytes changed on disk are caught too.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datasets
import torch
from torch import Tensor, nn

from .._checks import check_choice, check_positive_int

__all__ = ["SampleBank", "generator_fingerprint", "generator_settings", "ON_STALE", "Fill"]

ON_STALE = ("rebuild", "error")

#: ``fill(start, n, rng) -> {column: (n, *shape) tensor}``: rows ``start .. start + n``.
Fill = Callable[[int, int, torch.Generator], dict[str, Tensor]]

_SCALARS = (bool, int, float, str, type(None))


def _plain(value: Any) -> bool:
    if isinstance(value, _SCALARS):
        return not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return False


def generator_settings(generator: nn.Module) -> dict[str, Any]:
    """The hyperparameters of every module of ``generator`` that can change its samples: the
    saved hyperparameters (``hparams``) and public plain attributes (numbers, strings, tuples of
    them), so that e.g. a changed ``temperature`` or smoothing weight is seen even when set after
    construction.  A module lists attributes to leave out (file paths) in ``fingerprint_ignore``."""
    out: dict[str, Any] = {}
    for name, mod in generator.named_modules():
        skip = set(getattr(mod, "fingerprint_ignore", ())) | {"training"}
        settings: dict[str, Any] = {}
        hparams = getattr(mod, "hparams", None)
        if isinstance(hparams, dict):
            settings.update(
                {f"hp.{k}": v for k, v in hparams.items() if _plain(v) and k not in skip}
            )
        for k, v in vars(mod).items():
            if not k.startswith("_") and k not in skip and _plain(v):
                settings[k] = list(v) if isinstance(v, tuple) else v
        cls = type(mod)
        out[name or "."] = {"class": f"{cls.__module__}.{cls.__qualname__}", **settings}
    return out


def generator_fingerprint(generator: nn.Module) -> str:
    """SHA-256 over the generator's classes, hyperparameters (:func:`generator_settings`) and
    weights (``state_dict`` values)."""
    h = hashlib.sha256(json.dumps(generator_settings(generator), sort_keys=True).encode())
    for name, tensor in sorted(generator.state_dict().items()):
        buf = io.BytesIO()
        # clone(): torch.save writes a view's whole storage, so equal tensors that are views of
        # different buffers (e.g. torch.unique's outputs) would hash differently.
        torch.save(tensor.detach().cpu().clone(), buf)
        h.update(name.encode())
        h.update(hashlib.sha256(buf.getvalue()).digest())
    return h.hexdigest()


def _progress(items: range, description: str, enabled: bool) -> Iterator[int]:
    """``items`` with a rich progress bar in a terminal; elsewhere (a log file) a plain line at
    every tenth of the work, so that a long build is never silent."""
    if not enabled:
        yield from items
        return
    if sys.stderr.isatty():
        from rich.progress import track

        yield from track(items, description=description)
        return
    start, total, shown = time.perf_counter(), len(items), -1
    for i, item in enumerate(items):
        yield item
        tenth = 10 * (i + 1) // total
        if tenth > shown:
            shown = tenth
            seconds = time.perf_counter() - start
            print(f"{description}: {10 * tenth}% ({seconds:.0f} s)", file=sys.stderr, flush=True)


def _files_checksum(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(folder)).encode())
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


class SampleBank(torch.utils.data.Dataset):
    """A memory-mapped bank of samples in named columns; ``bank[i]`` is row ``i`` as a dict."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.meta: dict[str, Any] = json.loads((self.path / "meta.json").read_text())
            columns = self.meta["columns"]
            checksum = _files_checksum(self.path / "bank")
            if checksum != self.meta["checksum"]:
                raise ValueError("its files do not match the checksum written with them")
            self.data = datasets.load_from_disk(str(self.path / "bank")).with_format("torch")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"sample bank at {self.path} is incomplete or corrupt ({err}); delete the folder, "
                "or set on_stale='rebuild' to rebuild it."
            ) from err
        if len(self.data) != self.meta["size"]:
            raise ValueError(
                f"sample bank at {self.path} holds {len(self.data)} rows but its metadata says "
                f"{self.meta['size']}: it is corrupt; delete it to rebuild."
            )
        self._views: dict[tuple[str, ...], datasets.Dataset] = {}
        self.shapes = {k: tuple(v["shape"]) for k, v in columns.items()}
        self.dtypes = {
            k: getattr(torch, v["dtype"].removeprefix("torch.")) for k, v in columns.items()
        }

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.shapes)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[0] for k, v in self.rows([int(i)]).items()}

    def rows(
        self, idx: Tensor | list[int] | range, columns: tuple[str, ...] | None = None
    ) -> dict[str, Tensor]:
        """Columns of a batch of rows, by index (one Arrow read), in their stored shapes."""
        names = columns or self.columns
        view = self._views.get(names)
        if view is None:  # batches are read on the training hot path: select the columns once
            view = self._views[names] = self.data.select_columns(list(names))
        raw = view[list(map(int, idx))]
        return {k: raw[k].reshape(len(raw[k]), *self.shapes[k]).to(self.dtypes[k]) for k in names}

    def column(self, name: str, idx: Tensor | list[int] | range) -> Tensor:
        """One column of a batch of rows."""
        if name not in self.shapes:
            raise KeyError(f"sample bank at {self.path} has no column {name!r} ({self.columns}).")
        return self.rows(idx, (name,))[name]

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        path: str | Path,
        fill: Fill,
        size: int,
        fingerprint: str,
        seed: int = 0,
        chunk: int = 1024,
        device: torch.device | str = "cpu",
        progress: bool = True,
        info: dict[str, Any] | None = None,
    ) -> SampleBank:
        """Generate ``size`` rows in chunks with ``fill`` and write the bank atomically.

        Args:
            path: the bank folder (replaced when it exists).
            fill: ``fill(start, n, rng)`` returns rows ``start .. start + n`` as named columns.
            size: number of rows.
            fingerprint: what made the bank (checked by :meth:`get`).
            seed: seed of ``rng`` (a ``torch.Generator`` on ``device``).
            chunk: rows generated and written at a time (bounds memory).
            device: where ``fill`` runs.
            progress: show a progress bar.
            info: extra metadata to record (the generator's class, its cost).
        """
        size = check_positive_int(size, "bank_size")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # leftovers of interrupted builds
        gen = torch.Generator(device=device).manual_seed(seed)
        with torch.no_grad():
            probe = fill(0, 1, torch.Generator(device=device).manual_seed(seed))
        specs = {
            k: {"shape": list(v.shape[1:]), "dtype": str(v.dtype).removeprefix("torch.")}
            for k, v in probe.items()
        }

        def rows() -> Iterator[dict[str, Any]]:
            starts = range(0, size, chunk)
            for start in _progress(
                starts, f"building sample bank at {path} ({size} rows)", progress
            ):
                n = min(chunk, size - start)
                cols = {k: v.reshape(n, -1).cpu() for k, v in fill(start, n, gen).items()}
                for k, v in cols.items():
                    if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                        raise ValueError(
                            f"the generator produced non-finite values in column {k!r} (rows "
                            f"{start}..{start + n}); no bank was written. Check the draft "
                            "(a diverged training run?) before building a bank from it."
                        )
                for i in range(n):
                    yield {k: v[i].numpy() for k, v in cols.items()}

        def feature(v: Tensor) -> datasets.List:
            value = "float32" if v.dtype.is_floating_point else "int64"
            return datasets.List(datasets.Value(value), length=int(v[0].numel()))

        features = datasets.Features({k: feature(v) for k, v in probe.items()})
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        bars = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # the build shows its own progress
        try:
            with torch.no_grad():
                try:
                    ds = datasets.Dataset.from_generator(
                        rows,
                        features=features,
                        cache_dir=str(tmp / "cache"),
                        writer_batch_size=chunk,
                        fingerprint=fingerprint,
                    )
                except datasets.exceptions.DatasetGenerationError as err:
                    # the generator's own error (e.g. our refusal of non-finite drafts) reads
                    # better than datasets' wrapper around it
                    if isinstance(err.__cause__, Exception):
                        raise err.__cause__ from None
                    raise
            ds.save_to_disk(str(tmp / "bank"))
            del ds
            shutil.rmtree(tmp / "cache", ignore_errors=True)
            meta = {
                "fingerprint": fingerprint,
                "size": size,
                "seed": seed,
                "columns": specs,
                "checksum": _files_checksum(tmp / "bank"),
                **(info or {}),
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
        fill: Fill,
        size: int,
        fingerprint: str,
        on_stale: str = "rebuild",
        **build_kwargs: Any,
    ) -> SampleBank:
        """The bank at ``path`` if its fingerprint matches; else rebuild it (with a warning that
        says why) or raise (``on_stale='error'``)."""
        check_choice(on_stale, ON_STALE, "on_stale")
        path = Path(path)
        if path.exists():
            try:
                bank = cls(path)
                if bank.fingerprint == fingerprint:
                    return bank
                problem = (
                    f"sample bank at {path} was built by another generator, hyperparameters, "
                    f"seed, size or coupling (fingerprint {bank.fingerprint[:12]}, expected "
                    f"{fingerprint[:12]}; made by {bank.meta.get('generator_class')})"
                )
            except ValueError as err:
                problem = str(err)
            if on_stale == "error":
                raise ValueError(
                    f"{problem}. Delete it, point bank_dir elsewhere, or set on_stale='rebuild'."
                )
            warnings.warn(f"{problem}: rebuilding it.", stacklevel=2)
        return cls.build(path, fill, size, fingerprint, **build_kwargs)
