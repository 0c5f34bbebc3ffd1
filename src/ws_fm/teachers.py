r"""Teachers and teacher pairs: what ReFlow, one-step distillation and FGM train against.

A *teacher* is a trained cold flow of this library loaded from its checkpoint alone
(:func:`load_teacher`: the weights a checkpoint saves, EMA where it was on), frozen.  A
:class:`TeacherPairSource` pushes Gaussian noise through the teacher's ODE::

    z ~ N(0, I),    x1 = z + \int_0^1 v_teacher(x_t, t) dt        (solver: dopri5 or Euler N)

and hands the pairs ``(z, x1)`` to the sample bank: with the ``teacher_pairs`` coupling
(:class:`ws_fm.couplings.TeacherPairCoupling`) a :class:`~ws_fm.data.WarmStartDataModule` stores
them as the columns ``source`` and ``target`` (fingerprinted by the teacher's weights and the
solver settings, written atomically, built once under DDP), and records the teacher NFE and
seconds spent on them in the bank's metadata (``generation``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ._checks import check_choice, check_positive_int
from .solvers import FIXED_STEP_METHODS, SOLVERS, solve

__all__ = ["load_teacher", "resolve_teacher", "TeacherPairSource"]


def load_teacher(
    checkpoint: str | Path, map_location: Any = "cpu", warm: bool = False
) -> nn.Module:
    """A trained cold flow (``warm``: a warm refiner) from its checkpoint alone, frozen (eval
    mode, no gradients)."""
    from .checkpoints import load

    teacher = load(checkpoint, map_location=map_location)
    return _check_teacher(teacher, str(checkpoint), warm)


def resolve_teacher(teacher: nn.Module | str, warm: bool = False) -> nn.Module:
    """A teacher given as a module (checked and frozen) or as its checkpoint's path (loaded);
    ``warm``: a continuous warm refiner (its pairs start at ``t0`` from its drafts) instead of
    a cold flow."""
    if isinstance(teacher, str):
        return load_teacher(teacher, warm=warm)
    return _check_teacher(teacher, "teacher", warm)


def _check_teacher(teacher: Any, where: str = "teacher", warm: bool = False) -> nn.Module:
    path = getattr(teacher, "path", None)
    if not hasattr(teacher, "velocity") or path is None:
        raise ValueError(
            f"{where}: a teacher must be a ws_fm flow system (FlowMatching or a subclass); got "
            f"{type(teacher).__name__}."
        )
    if warm:
        if getattr(teacher, "is_discrete", False) or not hasattr(teacher, "draft"):
            raise ValueError(
                f"{where}: a warm student needs a continuous warm refiner as its teacher (a "
                f"WarmStartFlowMatching with its draft); got {type(teacher).__name__}."
            )
    elif getattr(teacher, "is_discrete", False) or float(path.t_start) != 0.0:
        raise ValueError(
            f"{where}: a teacher must be a continuous cold flow sampling from noise at t = 0 "
            f"(got {type(teacher).__name__} starting at t = {float(path.t_start):g}; a warm "
            "refiner teaches the warm students WarmReFlow and WarmOneStepDistillation)."
        )
    if getattr(teacher, "sample_shape", None) is None:
        raise ValueError(f"{where}: the teacher does not know its sample shape; fit it first.")
    return teacher.eval().requires_grad_(False)


class TeacherPairSource(nn.Module):
    """Start-to-sample pairs of a frozen teacher, for the sample bank: ``(z, x1)`` of a cold
    flow from noise, or, with ``warm``, ``(x_t0, x1)`` of a warm refiner, ``x_t0`` its draft
    placed at ``t0`` (``path.start``) and ``x1`` its ODE endpoint from there.

    Args:
        teacher: a trained cold flow (a warm refiner with ``warm``), or its checkpoint's path.
        solver: ``dopri5`` (adaptive, with ``rtol`` / ``atol``) or a fixed-step solver with
            ``steps`` steps (e.g. Euler 20).
        steps: fixed steps (ignored by adaptive solvers).
        rtol, atol: tolerances of the adaptive solver.
        warm: the teacher is a warm refiner.
    """

    #: the checkpoint's location does not change the pairs (the teacher's weights do)
    fingerprint_ignore = ("checkpoint",)

    def __init__(
        self,
        teacher: nn.Module | str,
        solver: str = "dopri5",
        steps: int = 100,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        warm: bool = False,
    ) -> None:
        super().__init__()
        self.checkpoint = teacher if isinstance(teacher, str) else None
        self.teacher = resolve_teacher(teacher, warm)
        self.warm = bool(warm)
        self.solver = check_choice(solver, SOLVERS, "solver")
        self.steps = check_positive_int(steps, "steps") if solver in FIXED_STEP_METHODS else None
        self.rtol, self.atol = float(rtol), float(atol)
        self._nfe, self._seconds, self._pairs, self._sample_nfe = 0, 0.0, 0, 0

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.teacher.sample_shape)

    @property
    def generation_cost(self) -> dict[str, float]:
        """Pairs made so far, the teacher NFE (per batch of pairs, summed over batches), the
        network evaluations per sample summed over samples (``sample_nfe``) and seconds."""
        return {
            "pairs": self._pairs,
            "teacher_nfe": self._nfe,
            "sample_nfe": self._sample_nfe,
            "seconds": self._seconds,
        }

    @torch.no_grad()
    def pairs(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n`` pairs ``(z, x1)``: the start state (noise; a warm teacher's draft placed at
        ``t0``) and the teacher's sample from it."""
        device = next(self.teacher.parameters()).device
        t_start = float(self.teacher.path.t_start)
        if self.warm:
            xd = self.teacher.draw_source(n).to(device)
            z = self.teacher.path.start(xd, self.teacher.path.draw_noise(xd, generator))
        else:
            z = torch.randn(n, *self.sample_shape, generator=generator, device=device)
        start = time.perf_counter()
        res = solve(
            self.teacher.velocity(),
            z,
            t_start=t_start,
            method=self.solver,
            steps=self.steps,
            rtol=self.rtol,
            atol=self.atol,
            network=self.teacher.net,
        )
        self._seconds += time.perf_counter() - start
        self._nfe += int(res.nfe)
        self._pairs += n
        self._sample_nfe += n * int(res.nfe)
        return z, res.samples

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` teacher samples (the second half of :meth:`pairs`)."""
        return self.pairs(n, generator)[1]
