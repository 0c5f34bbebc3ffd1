"""Image data sets, pixels scaled to [-1, 1], shape ``(N, C, H, W)``, with train/test splits.

Sources:

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images; a fixed stratified 80/20 split).
- ``fashion_mnist``: the IDX files of Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist/``, overridable with ``root``); 60k train + 10k test.
- ``hf:<name>``: a Hugging Face Hub data set through ``datasets`` (online users), its first image
  column converted to grayscale.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "IMAGE_SOURCES",
    "check_image_source",
    "FASHION_MNIST_ROOT",
    "load_images",
    "load_labelled_images",
    "read_idx",
]

Splits = tuple[Tensor, Tensor, Tensor, Tensor]
"""``(train_images, train_labels, test_images, test_labels)``."""

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SOURCES = ("digits", "fashion_mnist", "hf:<name>")
_FASHION_FILES = {
    "train": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (header {data[:4]!r}).")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(
            f"{path} is truncated: expected {int(np.prod(shape))} values, found {arr.size}."
        )
    return arr.reshape(shape)


def _uint8_to_unit(x: np.ndarray) -> Tensor:
    return (
        torch.tensor(x, dtype=torch.float32).div_(127.5).sub_(1.0)
    )  # copies: IDX buffers are read-only


def _digits() -> Splits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.as_tensor(d.images, dtype=torch.float32).div_(8.0).sub_(1.0).unsqueeze(1)
    idx_train, idx_test = train_test_split(
        np.arange(len(x)), test_size=0.2, random_state=0, stratify=d.target
    )
    y = torch.as_tensor(d.target, dtype=torch.long)
    return x[idx_train], y[idx_train], x[idx_test], y[idx_test]


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def _fashion_mnist(root: Path | None) -> Splits:
    root = Path(root) if root is not None else FASHION_MNIST_ROOT
    paths = {split: _find(root, stem) for split, stem in _FASHION_FILES.items()}
    missing = [f"{_FASHION_FILES[s]}[.gz]" for s, p in paths.items() if p is None]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files {', '.join(missing)} not found in {root}. Install them with "
            "`sudo apt-get install dataset-fashion-mnist` (`make install` does this where apt-get "
            "is available), or pass root=<folder with the IDX files>."
        )
    train, test = (_uint8_to_unit(read_idx(paths[s])).unsqueeze(1) for s in ("train", "test"))  # type: ignore[arg-type]
    ytr, yte = (
        torch.as_tensor(read_idx(paths[s]).astype("int64")) for s in ("train_labels", "test_labels")
    )  # type: ignore[arg-type]
    return train, ytr, test, yte


def _hub(name: str) -> Splits:
    from datasets import load_dataset

    ds = load_dataset(name)
    col = next(c for c, f in ds["train"].features.items() if type(f).__name__ == "Image")

    label = next(
        (c for c, f in ds["train"].features.items() if type(f).__name__ == "ClassLabel"), None
    )

    def convert(split: str) -> tuple[Tensor, Tensor]:
        imgs = [np.asarray(im.convert("L")) for im in ds[split][col]]
        y = torch.as_tensor(ds[split][label]) if label else torch.zeros(len(imgs), dtype=torch.long)
        return _uint8_to_unit(np.stack(imgs)).unsqueeze(1), y

    test = "test" if "test" in ds else "train"
    return (*convert("train"), *convert(test))


def check_image_source(source: str) -> str:
    """``source`` if it names a loader here; else a ``ValueError`` listing the choices."""
    if source in ("digits", "fashion_mnist") or (source.startswith("hf:") and len(source) > 3):
        return source
    raise ValueError(
        f"unknown image source={source!r}; choose 'digits', 'fashion_mnist' or 'hf:<name>'."
    )


def load_images(source: str, root: str | Path | None = None) -> tuple[Tensor, Tensor]:
    """``(train, test)`` image tensors in [-1, 1] for ``source`` (see :data:`IMAGE_SOURCES`)."""
    xtr, _, xte, _ = load_labelled_images(source, root)
    return xtr, xte


def load_labelled_images(source: str, root: str | Path | None = None) -> Splits:
    """``(train, train_labels, test, test_labels)`` for ``source``; images in [-1, 1]."""
    if source == "digits":
        return _digits()
    if source == "fashion_mnist":
        return _fashion_mnist(Path(root) if root is not None else None)
    return _hub(check_image_source(source)[3:])
