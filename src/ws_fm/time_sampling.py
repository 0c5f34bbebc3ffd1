r"""Training-time samplers on ``[t_start, 1]``: ``t = t_start + (1 - t_start) * u``, ``u`` in
``[0, 1]`` drawn by the sampler.

- :class:`UniformTime` (``uniform``): ``u ~ U(0, 1)`` (the default).
- :class:`LogitNormalTime` (``logit_normal``): ``u = sigmoid(loc + scale * z)``, ``z ~ N(0, 1)``
  (Esser et al. 2024), which puts more weight on the middle of the interval.
- :class:`UShapedTime` (``u_shaped``): density ``∝ cosh(a (u - 1/2))`` (2-RF++, Lee et al. 2024),
  which puts more weight on both ends, where a rectified flow's errors matter most.
- :class:`GridTime` (``grid``): ``u`` uniform on ``{0, 1/k, ..., (k-1)/k}``: the times a k-step
  Euler sampler visits.  :class:`~ws_fm.refiners.ReFlow` with ``GridTime(k)`` and
  ``sample_steps=k`` is Rectified Flow's k-step distillation (``reflow_t_schedule = k``).

Write your own by subclassing :class:`TimeSampler` and implementing :meth:`TimeSampler.draw_u`
(and give it by ``class_path`` in YAML).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_choice

__all__ = [
    "TimeSampler",
    "UniformTime",
    "LogitNormalTime",
    "UShapedTime",
    "GridTime",
    "TIME_SAMPLERS",
    "resolve_time_sampler",
    "sample_time",
]


class TimeSampler:
    """Draws ``n`` training times on ``[t_start, 1]``; subclasses implement :meth:`draw_u`."""

    name: str = ""

    def draw_u(self, n: int, device: torch.device | str | None) -> Tensor:
        """``n`` values in ``[0, 1]``."""
        raise NotImplementedError

    def __call__(
        self, n: int, t_start: float = 0.0, device: torch.device | str | None = None
    ) -> Tensor:
        return t_start + (1.0 - t_start) * self.draw_u(n, device)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class UniformTime(TimeSampler):
    """``u ~ U(0, 1)``."""

    name = "uniform"

    def draw_u(self, n: int, device: torch.device | str | None) -> Tensor:
        return torch.rand(n, device=device)


class LogitNormalTime(TimeSampler):
    """``u = sigmoid(loc + scale * z)``, ``z ~ N(0, 1)``.

    Args:
        loc: location of the logit (0 centres the mass at the interval's middle).
        scale: spread of the logit (``> 0``; smaller concentrates the mass).
    """

    name = "logit_normal"

    def __init__(self, loc: float = 0.0, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"scale={scale!r} must be > 0.")
        self.loc, self.scale = float(loc), float(scale)

    def draw_u(self, n: int, device: torch.device | str | None) -> Tensor:
        return torch.sigmoid(self.loc + self.scale * torch.randn(n, device=device))


class UShapedTime(TimeSampler):
    """Density ``p(u) ∝ cosh(a (u - 1/2))`` on ``[0, 1]``, drawn by inverting its CDF::

        F(u) = (sinh(a (u - 1/2)) + sinh(a / 2)) / (2 sinh(a / 2))
        u    = 1/2 + asinh((2 w - 1) sinh(a / 2)) / a,    w ~ U(0, 1)

    Args:
        a: how strongly the ends are favoured (``> 0``; 2-RF++ uses 4; small ``a`` is uniform).
    """

    name = "u_shaped"

    def __init__(self, a: float = 4.0) -> None:
        if not a > 0:
            raise ValueError(f"a={a!r} must be > 0.")
        self.a = float(a)

    def draw_u(self, n: int, device: torch.device | str | None) -> Tensor:
        w = torch.rand(n, device=device)
        half = torch.sinh(torch.tensor(self.a / 2))
        return (0.5 + torch.asinh((2 * w - 1) * half) / self.a).clamp(0.0, 1.0)


class GridTime(TimeSampler):
    """``u`` uniform on the grid ``{i / k : i = 0, ..., k - 1}``: a student trained at the times
    its k-step Euler sampler evaluates (k = 1: only ``t = 0``, the one-step generator).

    Args:
        k: number of sampling steps (``>= 1``).
    """

    name = "grid"

    def __init__(self, k: int = 1) -> None:
        if int(k) != k or k < 1:
            raise ValueError(f"k={k!r} must be an integer >= 1.")
        self.k = int(k)

    def draw_u(self, n: int, device: torch.device | str | None) -> Tensor:
        return torch.randint(self.k, (n,), device=device).float() / self.k


TIME_SAMPLERS: dict[str, type[TimeSampler]] = {
    c.name: c for c in (UniformTime, LogitNormalTime, UShapedTime, GridTime)
}


def resolve_time_sampler(sampler: str | TimeSampler) -> TimeSampler:
    """A :class:`TimeSampler` from a registered name (:data:`TIME_SAMPLERS`) or an instance."""
    if isinstance(sampler, str):
        return TIME_SAMPLERS[check_choice(sampler, TIME_SAMPLERS, "time_sampler")]()
    if not isinstance(sampler, TimeSampler):
        raise ValueError(
            f"time_sampler={sampler!r} is neither a name ({', '.join(TIME_SAMPLERS)}) nor a "
            "ws_fm.time_sampling.TimeSampler."
        )
    return sampler


def sample_time(
    sampler: str | TimeSampler,
    n: int,
    t_start: float = 0.0,
    device: torch.device | str | None = None,
) -> Tensor:
    """``n`` training times in ``[t_start, 1]`` from ``sampler`` (a name or an instance)."""
    return resolve_time_sampler(sampler)(n, t_start, device)
