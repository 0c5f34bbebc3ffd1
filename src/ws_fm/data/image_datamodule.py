"""``ImageDataModule``: digits, Fashion-MNIST or a hub data set, pixels in [-1, 1]."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from .images import check_image_source, load_images
from .tensor_datamodule import TensorDataModule

__all__ = ["ImageDataModule"]


class ImageDataModule(TensorDataModule):
    """Batches of ``(B, C, H, W)`` images in [-1, 1].

    Args:
        source: ``digits``, ``fashion_mnist`` or ``hf:<name>`` (see :mod:`ws_fm.data.images`).
        root: folder of the Fashion-MNIST IDX files (default: Debian's location).
        batch_size: per-process batch size.
        num_workers: DataLoader worker processes.
    """

    def __init__(
        self,
        source: str = "digits",
        root: str | Path | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers)
        check_image_source(source)
        self.source, self.root = source, root

    def load(self) -> tuple[Tensor, Tensor]:
        return load_images(self.source, self.root)
