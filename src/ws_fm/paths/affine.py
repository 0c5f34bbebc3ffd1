r"""``AffinePath``: Gaussian paths ``x_t = sigma_t * eps + alpha_t * x1`` from a schedule.

With the default :class:`~ws_fm.paths.CondOTScheduler` this is the cold start of docs/design.md §1
(rectified flow / CondOT)::

    x_t = (1 - t) * eps + t * x1,          u_t = x1 - eps,            t in [0, 1]

Any other :class:`~ws_fm.paths.Scheduler` (cosine) gives its own path; the target velocity
is ``u_t = sigma'_t * eps + alpha'_t * x1``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import PathSample, ProbabilityPath, check_same_shape, expand_time
from .schedulers import CondOTScheduler, Scheduler

__all__ = ["AffinePath", "ColdStartPath"]


class AffinePath(ProbabilityPath):
    """The affine path of ``scheduler`` (default CondOT) from Gaussian noise at ``t = 0``.

    Args:
        scheduler: ``alpha_t``, ``sigma_t`` and their derivatives.
    """

    t_start = 0.0

    def __init__(self, scheduler: Scheduler | None = None) -> None:
        self.scheduler = scheduler if scheduler is not None else CondOTScheduler()

    def place(self, source: Tensor, noise: Tensor, t: Tensor | float, scale: float = 1.0) -> Tensor:
        """``alpha_t * source + scale * sigma_t * noise``: a draft placed where the path is at
        ``t`` (the warm start point of docs/design.md §1 for CondOT: ``t0 xd + sigma (1 - t0) eps``);
        ``t`` a number or one time per sample."""
        check_same_shape(source, noise, "noise")
        sch = self.scheduler
        if isinstance(t, Tensor):
            t = expand_time(t, source)
        return sch.alpha(t) * source + scale * sch.sigma(t) * noise

    def bridge(
        self,
        x_s: Tensor,
        x1: Tensor,
        s: Tensor | float,
        t: Tensor | float,
        noise: Tensor | None = None,
    ) -> PathSample:
        check_same_shape(x_s, x1, "start state")
        if not bool((torch.as_tensor(s) < 1).all()):
            raise ValueError(f"a bridge needs a start time s < 1, got s={s}.")
        if isinstance(s, Tensor):  # one start time per sample (a refiner trained across t0)
            s = expand_time(s, x1)
        x_t, u_t = self.scheduler.bridge(x_s, x1, s, expand_time(t, x1))
        return PathSample(x_t=x_t, u_t=u_t, t=torch.as_tensor(t))

    def __repr__(self) -> str:
        return f"AffinePath({self.scheduler!r})"


class ColdStartPath(AffinePath):
    """The CondOT cold path (``AffinePath(CondOTScheduler())``), by its docs/design.md name."""

    def __init__(self) -> None:
        super().__init__(CondOTScheduler())

    def __repr__(self) -> str:
        return "ColdStartPath()"
