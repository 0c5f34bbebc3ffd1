"""The toy 2-D data sets of the WS-FM paper's synthetic setting, generated from a seed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.datasets import make_moons
from torch import Tensor

from .._checks import check_choice

__all__ = ["TOY_DATASETS", "make_toy"]


def _moons(n: int, rng: np.random.Generator) -> np.ndarray:
    x, _ = make_moons(n, noise=0.05, random_state=int(rng.integers(2**31)))
    return (x - np.array([0.5, 0.25])) * 2.0


def _checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    # Eight unit squares of a 4x4 board, alternating, then scaled to [-4, 4]^2.
    x1 = rng.uniform(-2, 2, n)
    x2 = rng.uniform(0, 1, n) - 2 * rng.integers(0, 2, n) + np.floor(x1) % 2
    return np.stack([x1, x2], axis=1) * 2.0


def _eight_gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    angles = 2 * np.pi * rng.integers(0, 8, n) / 8
    centres = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return centres + 0.4 * rng.standard_normal((n, 2))


def _spirals(n: int, rng: np.random.Generator) -> np.ndarray:
    # Two interleaved arms of an Archimedean spiral.
    r = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
    arm = rng.integers(0, 2, n) * np.pi
    xy = np.stack([r * np.cos(r + arm), r * np.sin(r + arm)], axis=1) / 2.0
    return xy + 0.15 * rng.standard_normal((n, 2))


TOY_DATASETS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "moons": _moons,
    "checkerboard": _checkerboard,
    "8gaussians": _eight_gaussians,
    "spirals": _spirals,
}


def make_toy(name: str, n: int, seed: int = 0) -> Tensor:
    """``n`` points of the named toy set as a float32 tensor of shape ``(n, 2)``."""
    check_choice(name, TOY_DATASETS, "dataset")
    rng = np.random.default_rng(seed)
    return torch.as_tensor(TOY_DATASETS[name](n, rng), dtype=torch.float32)
