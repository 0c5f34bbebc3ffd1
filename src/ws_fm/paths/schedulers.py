r"""Schedules of the affine (Gaussian) paths and of the masked (token) paths.

An affine path mixes a source ``x0`` (Gaussian noise for a cold start) and data ``x1`` as::

    x_t = sigma_t * x0 + alpha_t * x1,      alpha_0 = 0, sigma_0 = 1, alpha_1 = 1, sigma_1 = 0

and a :class:`Scheduler` gives ``alpha_t``, ``sigma_t`` and their time derivatives.  Conditioned on
its state ``x_s`` at an earlier time ``s`` and on ``x1``, the same path continues as the *bridge*::

    x_t = a_t * x_s + b_t * x1,     a_t = sigma_t / sigma_s,     b_t = alpha_t - a_t * alpha_s
    u_t = a'_t * x_s + b'_t * x1,   a'_t = sigma'_t / sigma_s,   b'_t = alpha'_t - a'_t * alpha_s

(``s = 0`` with ``x_s = x0`` is the path itself).  This is what makes the warm start generic:
started at ``x_s = alpha_s * x1 + sigma_s * eps`` the bridge is exactly the cold path on
``[s, 1]``, for any schedule.

A masked token path (:class:`KappaScheduler`) keeps ``x1[i]`` with probability ``kappa_t`` and
``MASK`` otherwise; its bridge from ``s`` reveals ``x1[i]`` with probability
``(kappa_t - kappa_s) / (1 - kappa_s)``, and its jump rate is ``kappa'_t / (1 - kappa_t)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "Scheduler",
    "CondOTScheduler",
    "CosineScheduler",
    "KappaScheduler",
    "LinearKappa",
    "CubicKappa",
]

Time = Tensor | float


def _cos(t: Time) -> Time:
    return torch.cos(t) if isinstance(t, Tensor) else math.cos(t)


def _sin(t: Time) -> Time:
    return torch.sin(t) if isinstance(t, Tensor) else math.sin(t)


class Scheduler:
    """``alpha_t`` and ``sigma_t`` of an affine path, and their time derivatives."""

    def alpha(self, t: Time) -> Time:
        raise NotImplementedError

    def sigma(self, t: Time) -> Time:
        raise NotImplementedError

    def d_alpha(self, t: Time) -> Time:
        raise NotImplementedError

    def d_sigma(self, t: Time) -> Time:
        raise NotImplementedError

    def bridge(self, x_s: Tensor, x1: Tensor, s: Time, t: Time) -> tuple[Tensor, Tensor]:
        """``(x_t, u_t)`` of the path from state ``x_s`` at time ``s < 1`` to ``x1``."""
        sig_s, alp_s = self.sigma(s), self.alpha(s)
        a, da = self.sigma(t) / sig_s, self.d_sigma(t) / sig_s
        b, db = self.alpha(t) - a * alp_s, self.d_alpha(t) - da * alp_s
        return a * x_s + b * x1, da * x_s + db * x1

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CondOTScheduler(Scheduler):
    """``alpha_t = t``, ``sigma_t = 1 - t``: the straight CondOT / rectified-flow path.

    Its bridge from ``s`` is the straight line ``x_t = (1 - r) x_s + r x1``,
    ``r = (t - s) / (1 - s)``, with constant velocity ``(x1 - x_s) / (1 - s)``.
    """

    def alpha(self, t: Time) -> Time:
        return t

    def sigma(self, t: Time) -> Time:
        return 1 - t

    def d_alpha(self, t: Time) -> Time:
        return 1.0 + 0 * t

    def d_sigma(self, t: Time) -> Time:
        return -1.0 + 0 * t

    def bridge(self, x_s: Tensor, x1: Tensor, s: Time, t: Time) -> tuple[Tensor, Tensor]:
        # The closed form of the generic bridge (same numbers, fewer roundings).
        r = (t - s) / (1 - s)
        return (1 - r) * x_s + r * x1, (x1 - x_s) / (1 - s)


class CosineScheduler(Scheduler):
    """``alpha_t = sin(pi t / 2)``, ``sigma_t = cos(pi t / 2)``: variance preserving
    (``alpha^2 + sigma^2 = 1``), the cosine schedule of improved DDPM in flow form."""

    def alpha(self, t: Time) -> Time:
        return _sin(math.pi / 2 * t)

    def sigma(self, t: Time) -> Time:
        return _cos(math.pi / 2 * t)

    def d_alpha(self, t: Time) -> Time:
        return math.pi / 2 * _cos(math.pi / 2 * t)

    def d_sigma(self, t: Time) -> Time:
        return -math.pi / 2 * _sin(math.pi / 2 * t)


class KappaScheduler:
    """``kappa_t``, the probability that a token of a masked path already shows ``x1``
    (``kappa_0 = 0``, ``kappa_1 = 1``, increasing), and its derivative."""

    def kappa(self, t: Time) -> Time:
        raise NotImplementedError

    def d_kappa(self, t: Time) -> Time:
        raise NotImplementedError

    def reveal_probability(self, s: float, t: Time) -> Time:
        """Probability that a position not showing ``x1`` at ``s`` shows it at ``t >= s``:
        ``(kappa_t - kappa_s) / (1 - kappa_s)``; on a sampler step this is the jump
        probability, whose rate is ``kappa'_t / (1 - kappa_t)``."""
        k_s = self.kappa(s)
        return (self.kappa(t) - k_s) / (1 - k_s)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LinearKappa(KappaScheduler):
    """``kappa_t = t`` (the masked path of docs/design.md §1); jump rate ``1 / (1 - t)``."""

    def kappa(self, t: Time) -> Time:
        return t

    def d_kappa(self, t: Time) -> Time:
        return 1.0 + 0 * t


class CubicKappa(KappaScheduler):
    """``kappa_t = 3 t^2 - 2 t^3`` (smoothstep): few tokens early and late, most in between."""

    def kappa(self, t: Time) -> Time:
        return 3 * t * t - 2 * t * t * t

    def d_kappa(self, t: Time) -> Time:
        return 6 * t * (1 - t)
