r"""``WarmStart``: any path turned into its warm-start version from ``t0``.

The warm start point is the source (a draft ``xd``) placed where the cold path would be at
``t0``, noise included, and the path then continues as the cold path's bridge from that state to
the data (docs/design.md §1).  For the CondOT path::

    x_t0 = t0 * xd + sigma * (1 - t0) * eps
    s    = (t - t0) / (1 - t0)
    x_t  = (1 - s) * x_t0 + s * x1,        u_t = (x1 - x_t0) / (1 - t0),   t in [t0, 1]

For any affine schedule ``x_t0 = alpha_t0 xd + sigma sigma_t0 eps`` and the bridge of
:mod:`ws_fm.paths.schedulers`; for the masked token path ``x_t0`` keeps each draft token with
probability ``kappa_t0``.  Two properties hold for every path, by construction:

- ``t0 = 0`` is exactly the cold path (the draft drops out);
- perfect drafts (``xd = x1``) with ``sigma = 1`` give exactly the cold path on ``[t0, 1]``.

Sampling integrates from ``t0`` to 1, so with step size ``h`` it costs ``ceil((1 - t0) / h)``
steps instead of ``ceil(1 / h)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._checks import check_sigma, check_t0
from .affine import AffinePath
from .base import PathSample, ProbabilityPath

__all__ = ["WarmStart", "WarmStartPath"]


class WarmStart(ProbabilityPath):
    """The warm-start version of ``path`` from ``t0``.

    Args:
        path: the cold path (default: the CondOT :class:`~ws_fm.paths.AffinePath`).
        t0: starting time in ``[0, 1)``.
        sigma: scale of the noise mixed into the draft at ``t0`` (``>= 0``; 1 matches the cold
            path's noise level at ``t0``; ignored by the masked token path).
    """

    def __init__(
        self, path: ProbabilityPath | None = None, t0: float = 0.8, sigma: float = 1.0
    ) -> None:
        if isinstance(path, WarmStart):
            raise ValueError("path is already a WarmStart; wrap the cold path instead.")
        self.path = path if path is not None else AffinePath()
        self.t0 = check_t0(t0)
        self.sigma = check_sigma(sigma)

    @property
    def t_start(self) -> float:  # type: ignore[override]
        return self.t0

    def draw_noise(self, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.path.draw_noise(like, generator)

    def start(self, source: Tensor, noise: Tensor | None = None) -> Tensor:
        """``x_t0``: the draft placed where the cold path is at ``t0``."""
        if noise is None:
            noise = self.draw_noise(source)
        return self.path.place(source, noise, self.t0, self.sigma)

    def place(self, source: Tensor, noise: Tensor, t: Tensor | float, scale: float = 1.0) -> Tensor:
        return self.path.place(source, noise, t, scale)

    def bridge(
        self,
        x_s: Tensor,
        x1: Tensor,
        s: Tensor | float,
        t: Tensor | float,
        noise: Tensor | None = None,
    ) -> PathSample:
        return self.path.bridge(x_s, x1, s, t, noise)

    @property
    def source_name(self) -> str:
        return "draft"

    def __getattr__(self, name: str) -> Any:
        # Path-specific extras of the wrapped path (mask_id, jump_probability, scheduler).
        if name == "path":
            raise AttributeError(name)
        return getattr(self.path, name)

    def __repr__(self) -> str:
        return f"WarmStart({self.path!r}, t0={self.t0}, sigma={self.sigma})"


class WarmStartPath(WarmStart):
    """The CondOT warm path of docs/design.md §1: ``WarmStart(AffinePath(), t0, sigma)``."""

    def __init__(self, t0: float = 0.8, sigma: float = 1.0) -> None:
        super().__init__(AffinePath(), t0, sigma)

    def __repr__(self) -> str:
        return f"WarmStartPath(t0={self.t0}, sigma={self.sigma})"
