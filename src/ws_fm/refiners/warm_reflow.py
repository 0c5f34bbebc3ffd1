r"""Warm start composed with rectification and distillation: ``WarmReFlow``,
``WarmOneStepDistillation``.

A trained warm refiner (teacher, :class:`~ws_fm.refiners.WarmStartFlowMatching`) maps each
warm start point to an endpoint::

    x_t0 = t0 * xd + sigma (1 - t0) * eps,        x1 = ODE[v_teacher](x_t0; t0 -> 1)

**Warm ReFlow** retrains on straight lines between these pairs, on ``[t0, 1]`` only::

    s = (t - t0) / (1 - t0),   x_t = (1 - s) x_t0 + s x1,   u_t = (x1 - x_t0) / (1 - t0)
    L = E_t || v_theta(x_t, t) - u_t ||^2

so that few Euler steps from ``x_t0`` land near the teacher's endpoint.  Sampling is the warm
refiner's: a draft, placed at ``t0``, integrated to 1.

**Warm one-step distillation** is the same objective at ``t = t0`` alone (``GridTime(1)``: the
times a 1-step Euler sampler evaluates), so that ::

    x1_hat = x_t0 + (1 - t0) v_theta(x_t0, t0)

regresses on the teacher's endpoint, with the distances of
:class:`~ws_fm.refiners.OneStepDistillation` (``l2``, ``l1``, ``pseudo_huber``); its sampling cost
is one draft plus one network evaluation.

Both start from the teacher's weights, take its draft, ``t0`` and ``sigma``, and read pairs from
the sample bank (``coupling="teacher_pairs"``: the bank stores ``(x_t0, x1)`` made once by a
:class:`~ws_fm.teachers.TeacherPairSource` with ``warm=True``) or, with ``online=True``, make
them at every step.  A k-step warm student is ``WarmReFlow(time_sampler=GridTime(k),
sample_steps=k)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..paths import PathSample, WarmStart
from ..teachers import TeacherPairSource, resolve_teacher
from ..time_sampling import TimeSampler
from .flow_matching import Cond
from .reflow import ReFlow

__all__ = ["WarmReFlow", "WarmOneStepDistillation"]


class WarmReFlow(ReFlow):
    """A warm refiner rectified on its warm teacher's ``(x_t0, x1)`` pairs (module docstring).

    Args:
        net: the backbone (the teacher's architecture when ``init_from_teacher``).
        teacher: a trained :class:`~ws_fm.refiners.WarmStartFlowMatching` (or its checkpoint's
            path), frozen; its draft, ``t0`` and ``sigma`` are the student's.
        teacher_solver, teacher_steps, teacher_rtol, teacher_atol, online, init_from_teacher,
        distance: as in :class:`~ws_fm.refiners.ReFlow` (``real_fraction`` does not apply: a
            real data point has no warm start point of its own).
        **kwargs: the remaining :class:`~ws_fm.refiners.FlowMatching` arguments.
    """

    def __init__(
        self,
        net: nn.Module,
        teacher: nn.Module | str,
        teacher_solver: str = "dopri5",
        teacher_steps: int = 100,
        teacher_rtol: float = 1e-5,
        teacher_atol: float = 1e-5,
        online: bool = False,
        init_from_teacher: bool = True,
        distance: str = "l2",
        coupling: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("real_fraction", 0.0):  # the CLI passes ReFlow's default explicitly
            raise ValueError(
                f"{type(self).__name__}: real_fraction does not apply (a real data point has no "
                "warm start point of its own); leave it at 0."
            )
        warm_teacher = resolve_teacher(teacher, warm=True)
        if kwargs.get("path") is not None:
            raise ValueError(
                f"{type(self).__name__} takes its path from the teacher (its cold path, t0 and "
                "sigma): leave path out."
            )
        kwargs.pop("path", None)
        cold = warm_teacher.path.path  # type: ignore[attr-defined]
        kwargs["path"] = WarmStart(cold, warm_teacher.t0, warm_teacher.sigma)  # type: ignore[attr-defined]
        super().__init__(
            net,
            warm_teacher,
            teacher_solver,
            teacher_steps,
            teacher_rtol,
            teacher_atol,
            online,
            0.0,
            init_from_teacher,
            distance,
            coupling,
            **kwargs,
        )

    @staticmethod
    def make_pair_source(
        teacher: nn.Module | str, solver: str, steps: int, rtol: float, atol: float
    ) -> TeacherPairSource:
        return TeacherPairSource(teacher, solver, steps, rtol, atol, warm=True)

    @property
    def t0(self) -> float:
        return float(self.path.t_start)

    def draw_source(self, n: int, like: Tensor | None = None) -> Tensor:
        """``n`` drafts from the teacher's draft (placed at ``t0`` by the path)."""
        xd = self.teacher.draw_source(n)  # type: ignore[operator]
        return xd.to(like.device if like is not None else self.device)

    def training_draw(self, batch: Any) -> tuple[PathSample, Cond]:
        x1, _, cond = self.unpack_batch(batch)
        if self.online or self.batch_is_paired(batch) or self.training:
            x_start, x1 = self.teacher_batch(batch)
        else:  # validation on plain data batches: fresh warm start points against the data
            xd = self.draw_source(x1.shape[0], like=x1)
            x_start = self.path.start(xd, self.path.draw_noise(xd))
        t = self.sample_time(x1.shape[0])
        return self.path.sample_from(x_start, x1, t, self.path.draw_noise(x1)), cond


class WarmOneStepDistillation(WarmReFlow):
    """One draft plus one network evaluation: ``x1 = x_t0 + (1 - t0) v_theta(x_t0, t0)``,
    regressed on the warm teacher's endpoints (module docstring).  Arguments as
    :class:`WarmReFlow`, with the one-step defaults ``time_sampler="grid"`` (``GridTime(1)``:
    training at ``t0`` alone) and ``sample_steps=1``."""

    def __init__(
        self,
        net: nn.Module,
        teacher: nn.Module | str,
        time_sampler: str | TimeSampler = "grid",
        sample_steps: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            net, teacher, time_sampler=time_sampler, sample_steps=sample_steps, **kwargs
        )

    @torch.no_grad()
    def generate(self, x_t0: Tensor) -> Tensor:
        """``x_t0 + (1 - t0) v_theta(x_t0, t0)``: the one-step refinement of start points."""
        t = torch.full((x_t0.shape[0],), self.t0, device=x_t0.device)
        return x_t0 + (1 - self.t0) * self.net(x_t0, t)
