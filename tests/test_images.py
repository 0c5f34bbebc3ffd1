import gzip
import struct

import numpy as np
import pytest
import torch

from ws_fm.data import ImageDataModule, load_images, load_labelled_images, read_idx
from ws_fm.data.images import FASHION_MNIST_ROOT


def test_digits_are_scaled_and_split_disjointly():
    xtr, ytr, xte, yte = load_labelled_images("digits")
    assert xtr.shape[1:] == (1, 8, 8) and xte.shape[1:] == (1, 8, 8)
    assert len(xtr) + len(xte) == 1797 and len(xte) == 360
    assert xtr.min() == -1 and xtr.max() == 1
    assert set(ytr.tolist()) == set(range(10)) == set(yte.tolist())
    flat_tr = {tuple(r) for r in xtr.reshape(len(xtr), -1).tolist()}
    overlap = sum(tuple(r) in flat_tr for r in xte.reshape(len(xte), -1).tolist())
    assert (
        overlap <= 5
    )  # sklearn's digits hold a few exact duplicates; the split itself is disjoint


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    arr = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    raw = struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">III", 3, 4, 5) + arr.tobytes()
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    assert np.array_equal(read_idx(path), arr)
    path.write_bytes(raw[:-3])
    if not gz:
        with pytest.raises(ValueError, match="truncated"):
            read_idx(path)


def test_missing_fashion_mnist_names_the_install_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_images("fashion_mnist", root=tmp_path)


@pytest.mark.skipif(
    not FASHION_MNIST_ROOT.exists(), reason="Debian package dataset-fashion-mnist not installed"
)
def test_fashion_mnist_from_the_debian_package():
    xtr, ytr, xte, yte = load_labelled_images("fashion_mnist")
    assert xtr.shape == (60000, 1, 28, 28) and xte.shape == (10000, 1, 28, 28)
    assert xtr.min() == -1 and xtr.max() == 1 and int(ytr.max()) == 9


def test_image_datamodule_batches_and_bad_source():
    dm = ImageDataModule("digits", batch_size=32)
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (32, 1, 8, 8) and batch.dtype == torch.float32
    with pytest.raises(ValueError, match="unknown image source='mnist'"):
        ImageDataModule("mnist")
