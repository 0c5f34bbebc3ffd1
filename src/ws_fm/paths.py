r"""Probability paths from a source to the data, for continuous data.

Convention (DESIGN.md §1): ``t = 0`` is the source, ``t = 1`` is data.  ``x1 ~ p_data``,
``eps ~ N(0, I)``, drafts ``xd ~ q``.

Cold start (rectified flow / CondOT path), ``t in [0, 1]``::

    x_t = (1 - t) * eps + t * x1,        u_t = x1 - eps

Warm start from ``t0 in [0, 1)``: the draft is placed where the cold path would be at ``t0``,
noise included (``sigma`` scales the noise)::

    x_t0 = t0 * xd + sigma * (1 - t0) * eps
    s    = (t - t0) / (1 - t0)
    x_t  = (1 - s) * x_t0 + s * x1,      u_t = (x1 - x_t0) / (1 - t0),     t in [t0, 1]

Both paths share one interface: ``start(source, noise)`` is the ODE's initial state at
``t_start``; ``sample(source, x1, t, noise)`` gives ``x_t`` and the target velocity ``u_t``.
``source`` is what a coupling pairs with the data: the noise itself for the cold path, the draft
for the warm path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import check_sigma, check_t0

__all__ = ["PathSample", "ProbabilityPath", "ColdStartPath", "WarmStartPath"]


@dataclass(frozen=True)
class PathSample:
    """A point on the path and the velocity the network regresses on."""

    x_t: Tensor
    u_t: Tensor
    t: Tensor


def _expand_time(t: Tensor | float, like: Tensor) -> Tensor:
    """Broadcast per-sample times ``t`` of shape ``(B,)`` (or a scalar) against ``like``."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t
    if t.shape[0] != like.shape[0]:
        raise ValueError(f"t has {t.shape[0]} entries but the batch has {like.shape[0]} samples.")
    return t.reshape(-1, *([1] * (like.ndim - 1)))


class ProbabilityPath:
    """Interface of a path; subclasses set :attr:`t_start`."""

    t_start: float = 0.0

    def draw_noise(self, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The randomness :meth:`start` and :meth:`sample` consume: Gaussian, shaped like
        ``like``."""
        return torch.randn(like.shape, device=like.device, dtype=like.dtype, generator=generator)

    def start(self, source: Tensor, noise: Tensor) -> Tensor:
        """The state at ``t_start`` from which sampling integrates to ``t = 1``."""
        raise NotImplementedError

    def sample(self, source: Tensor, x1: Tensor, t: Tensor, noise: Tensor) -> PathSample:
        """``x_t`` and ``u_t`` for paired ``(source, x1)`` at times ``t`` in ``[t_start, 1]``."""
        raise NotImplementedError


class ColdStartPath(ProbabilityPath):
    """The CondOT path from Gaussian noise; ``source`` is the noise ``eps``."""

    t_start = 0.0

    def start(self, source: Tensor, noise: Tensor | None = None) -> Tensor:
        return source

    def sample(
        self, source: Tensor, x1: Tensor, t: Tensor, noise: Tensor | None = None
    ) -> PathSample:
        _check_same_shape(source, x1, "noise")
        tt = _expand_time(t, x1)
        return PathSample(x_t=(1 - tt) * source + tt * x1, u_t=x1 - source, t=torch.as_tensor(t))


class WarmStartPath(ProbabilityPath):
    """The warm-start path from drafts at ``t0``; ``source`` is the draft ``xd``.

    Args:
        t0: starting time in ``[0, 1)``; sampling costs a fraction ``1 - t0`` of a cold start's
            steps at the same step size.
        sigma: scale of the noise mixed into the draft at ``t0`` (``>= 0``; 1 matches the cold
            path's noise level at ``t0``).
    """

    def __init__(self, t0: float = 0.8, sigma: float = 1.0) -> None:
        self.t0 = check_t0(t0)
        self.sigma = check_sigma(sigma)

    @property
    def t_start(self) -> float:  # type: ignore[override]
        return self.t0

    def start(self, source: Tensor, noise: Tensor) -> Tensor:
        _check_same_shape(source, noise, "noise")
        return self.t0 * source + self.sigma * (1 - self.t0) * noise

    def sample(self, source: Tensor, x1: Tensor, t: Tensor, noise: Tensor) -> PathSample:
        _check_same_shape(source, x1, "draft")
        x_t0 = self.start(source, noise)
        s = (_expand_time(t, x1) - self.t0) / (1 - self.t0)
        return PathSample(
            x_t=(1 - s) * x_t0 + s * x1,
            u_t=(x1 - x_t0) / (1 - self.t0),
            t=torch.as_tensor(t),
        )

    def __repr__(self) -> str:
        return f"WarmStartPath(t0={self.t0}, sigma={self.sigma})"


def _check_same_shape(source: Tensor, x1: Tensor, what: str) -> None:
    if source.shape != x1.shape:
        raise ValueError(
            f"{what} shape {tuple(source.shape)} differs from data shape {tuple(x1.shape)}; "
            f"the {what} must have the data's shape."
        )
