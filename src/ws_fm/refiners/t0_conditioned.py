r"""``T0ConditionedFlowMatching``: one warm refiner for every ``t0`` in a range.

A warm refiner trained at one ``t0`` serves only that ``t0``: the velocity of the warm path
depends on where the drafts were placed.  This one is trained across ``t0 ~ U[t0_min, t0_max]``,
one start time per training pair, and told it::

    x_t0 = alpha_t0 xd + sigma sigma_t0 eps,     t = t0 + (1 - t0) u,  u ~ time_sampler on [0, 1]
    L = E || v_theta(x_t, t, t0) - u_t ||^2      (the warm bridge of x_t0 to x1, as in WS-FM)

(CondOT: ``x_t0 = t0 xd + sigma (1 - t0) eps``, ``u_t = (x1 - x_t0) / (1 - t0)``), so that the
start time is chosen after training: by hand (:meth:`T0ConditionedFlowMatching.set_t0`), or read
off the draft with :func:`ws_fm.calibration.calibrate_t0` (:meth:`~WarmStartMixin.calibrate_start`,
or ``t0: auto``, on the grid points inside the range).  Sampling at ``t0`` integrates
``dx/dt = v_theta(x, t, t0)`` from ``t0`` to 1 and costs what a refiner trained at that ``t0``
costs.  The backbone must take the start time: ``MLP(start_conditioned=True)`` or
``UNet(start_conditioned=True)`` (``net(x, t, t0=...)``).  Affine (real-valued) paths only.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_t0
from ..couplings import Coupling
from ..paths import AffinePath, PathSample, ProbabilityPath
from .flow_matching import Cond
from .warm_start import WarmStartFlowMatching

__all__ = ["T0ConditionedFlowMatching"]


class T0ConditionedFlowMatching(WarmStartFlowMatching):
    """A warm refiner trained across ``t0 in [t0_range[0], t0_range[1]]``, sampled at any of them.

    Args:
        net: a backbone that takes the start time, ``net(x, t, t0=...)``.
        draft: the draft generator (as in :class:`WarmStartFlowMatching`).
        t0_range: ``(t0_min, t0_max)``, both in ``[0, 1)``: the start times trained on.
        t0: the start time sampling uses until :meth:`set_t0` changes it (inside the range), or
            ``"auto"`` (calibrated from the draft in ``setup``, on the grid points inside the
            range).
        sigma, coupling, path, **kwargs: as in :class:`WarmStartFlowMatching` (``path`` affine).
    """

    def __init__(
        self,
        net: nn.Module,
        draft: nn.Module,
        t0_range: Sequence[float] = (0.5, 0.95),
        t0: float | str = 0.8,
        sigma: float = 1.0,
        coupling: str | Coupling = "minibatch_ot",
        path: ProbabilityPath | None = None,
        **kwargs: Any,
    ) -> None:
        lo, hi = self.check_range(t0_range)
        takes_t0 = "t0" in inspect.signature(net.forward).parameters
        if not getattr(net, "start_conditioned", takes_t0):  # the library's nets say so
            raise ValueError(
                f"net={type(net).__name__} does not take the start time t0: a refiner trained "
                "across t0 needs net(x, t, t0=...), e.g. MLP(start_conditioned=True) or "
                "UNet(start_conditioned=True)."
            )
        if path is not None and not isinstance(path, AffinePath):
            raise ValueError(
                f"path={type(path).__name__}: T0ConditionedFlowMatching trains on affine "
                "(real-valued) paths only."
            )
        self.t0_range = (lo, hi)
        if not isinstance(t0, str):
            self._check_in_range(t0)
        super().__init__(net, draft, t0, sigma, coupling, path, **kwargs)

    @staticmethod
    def check_range(t0_range: Sequence[float]) -> tuple[float, float]:
        if len(t0_range) != 2:
            raise ValueError(f"t0_range={t0_range!r} must be (t0_min, t0_max).")
        lo, hi = (check_t0(t, "t0_range") for t in t0_range)
        if lo > hi:
            raise ValueError(f"t0_range={t0_range!r}: t0_min must not exceed t0_max.")
        return lo, hi

    def _check_in_range(self, t0: float) -> float:
        lo, hi = self.t0_range
        if not lo <= check_t0(t0) <= hi:
            raise ValueError(
                f"t0={t0} is outside t0_range=({lo}, {hi}), the start times this refiner was "
                "trained on; choose one inside it (or train with a wider t0_range)."
            )
        return float(t0)

    def set_t0(self, t0: float) -> None:
        """Sample from ``t0`` from now on (inside ``t0_range``; saved in the hyperparameters)."""
        self.path.t0 = self._check_in_range(t0)  # type: ignore[attr-defined]
        self.hparams["t0"] = self.path.t0  # type: ignore[attr-defined]

    def calibration_grid(self) -> tuple[float, ...]:
        lo, hi = self.t0_range
        inside = tuple(t for t in super().calibration_grid() if lo <= t <= hi)
        return inside or (lo,)

    def draw_start_times(self, n: int) -> Tensor:
        """One training start time per pair, uniform on ``t0_range``."""
        lo, hi = self.t0_range
        return lo + (hi - lo) * torch.rand(n, device=self.device)

    def training_draw(self, batch: Any) -> tuple[PathSample, Cond]:
        source, x1, cond = self.paired_batch(batch)
        t0 = self.draw_start_times(x1.shape[0])
        t = self.time_sampler(x1.shape[0], t0, device=self.device)  # on [t0, 1] per pair
        noise = self.path.draw_noise(x1)
        x_t0 = self.path.place(source, noise, t0, self.sigma)
        return self.path.bridge(x_t0, x1, t0, t, noise), {**(cond or {}), "t0": t0}

    def velocity(self, cond: Cond = None) -> Any:
        """The field at the current start time, ``(x, t) -> v_theta(x, t, t0)``."""
        cond = cond or {}

        def field(x: Tensor, t: Tensor) -> Tensor:
            t0 = torch.full((x.shape[0],), self.t0, device=x.device, dtype=x.dtype)
            return self(x, t, **cond, t0=t0)

        return field
