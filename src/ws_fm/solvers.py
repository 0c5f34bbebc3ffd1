r"""ODE solvers from any start time to ``t = 1``, with counted NFE.

Sampling integrates ``dx/dt = v(x, t)`` from ``t_start`` (0 for a cold start, ``t0`` for a warm
start) to ``t = 1``.  Fixed-step methods take ``n`` equal steps of size ``(1 - t_start) / n``;
given a step size ``h`` instead, ``n = ceil((1 - t_start) / h)`` (the last step is not cut short:
all ``n`` steps shrink equally to land on ``t = 1``).  A method with ``k`` network evaluations a
step therefore costs ``k * ceil((1 - t_start) / h)``:

=========  ===  =================================================
method     k    torchdiffeq name
=========  ===  =================================================
euler      1    ``euler``
midpoint   2    ``midpoint``
heun       2    ``heun2`` (explicit trapezoid / Heun's method)
rk4        4    ``rk4`` (the 3/8-rule Runge-Kutta)
dopri5     --   ``dopri5``, adaptive (``rtol``, ``atol``)
=========  ===  =================================================

The NFE is never computed from this table: :class:`NFECounter` wraps the network and counts the
calls that the solver really makes.  Integration itself is torchdiffeq's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torchdiffeq import odeint

from ._checks import check_choice, check_positive_int, check_t0

__all__ = [
    "discrete_euler",
    "FIXED_STEP_METHODS",
    "ADAPTIVE_METHODS",
    "SOLVERS",
    "NFECounter",
    "SolveResult",
    "num_steps",
    "solve",
]

Velocity = Callable[[Tensor, Tensor], Tensor]
"""A velocity field ``v(x, t) -> dx/dt`` with ``t`` of shape ``(batch,)``."""

#: Fixed-step methods: our name -> (torchdiffeq name, evaluations per step).
FIXED_STEP_METHODS: dict[str, tuple[str, int]] = {
    "euler": ("euler", 1),
    "midpoint": ("midpoint", 2),
    "heun": ("heun2", 2),
    "rk4": ("rk4", 4),
}
ADAPTIVE_METHODS: tuple[str, ...] = ("dopri5",)
SOLVERS: tuple[str, ...] = (*FIXED_STEP_METHODS, *ADAPTIVE_METHODS)


class NFECounter(torch.nn.Module):
    """Wraps a velocity field ``v(x, t)`` as torchdiffeq's ``f(t, x)`` and counts network calls.

    Without ``network`` every call of the field counts as one evaluation on the whole batch.  With
    ``network`` (an ``nn.Module``), the counter counts that module's forward calls instead, through
    a forward hook active while the counter is used as a context manager: a field that calls its
    network twice a step (classifier-free guidance, say) then counts twice.  The count is the NFE
    of a batch.
    """

    def __init__(self, velocity: Velocity, network: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.velocity = velocity
        self.nfe = 0
        # A plain list: the network must not become a submodule of the counter.
        self._network = [network] if network is not None else []
        self._hook: torch.utils.hooks.RemovableHandle | None = None

    def _count(self, *args: object) -> None:
        self.nfe += 1

    def __enter__(self) -> NFECounter:
        if self._network:
            self._hook = self._network[0].register_forward_pre_hook(self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        """torchdiffeq's ``f(t, x)`` with a scalar ``t``."""
        return self.evaluate(x, t.to(x.dtype).expand(x.shape[0]))

    def evaluate(self, x: Tensor, t: Tensor, *extra: Tensor) -> Tensor:
        """``velocity(x, t, *extra)``, counted; ``t`` of shape ``(batch,)``."""
        if self._network and self._hook is None:
            raise RuntimeError("an NFECounter with a network counts only inside `with counter:`.")
        if not self._network:
            self.nfe += 1
        return self.velocity(x, t, *extra)


@dataclass
class SolveResult:
    """Samples at ``t = 1``, the counted NFE, and optionally the trajectory.

    ``trajectory`` has shape ``(len(times), *samples.shape)``: the state at each of ``times``.
    """

    samples: Tensor
    nfe: int
    times: Tensor | None = None
    trajectory: Tensor | None = None


def num_steps(t_start: float, step_size: float) -> int:
    """``ceil((1 - t_start) / step_size)``, robust to floating-point noise (0.2/0.1 is 2)."""
    if not step_size > 0:
        raise ValueError(f"step_size={step_size!r} must be > 0.")
    return max(1, math.ceil((1.0 - t_start) / step_size - 1e-9))


def solve(
    velocity: Velocity,
    x_start: Tensor,
    t_start: float = 0.0,
    method: str = "euler",
    steps: int | None = None,
    step_size: float | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    return_trajectory: bool = False,
    trajectory_points: int = 11,
    network: torch.nn.Module | None = None,
) -> SolveResult:
    """Integrate ``dx/dt = velocity(x, t)`` from ``t_start`` to 1.

    Args:
        velocity: the vector field, ``velocity(x, t)`` with ``t`` of shape ``(batch,)``.
        x_start: the state at ``t_start``.
        t_start: start time in ``[0, 1)``.
        method: one of :data:`SOLVERS`.
        steps: number of fixed steps over ``[t_start, 1]`` (fixed-step methods).
        step_size: alternatively the step size ``h``; ``steps = ceil((1 - t_start) / h)``.
        rtol, atol: tolerances of the adaptive method.
        return_trajectory: also return the states along the way (every step for fixed-step
            methods; ``trajectory_points`` equally spaced times for adaptive ones).
        network: the network whose forward calls are counted as the NFE (default: each call of
            ``velocity`` counts once).

    Returns:
        :class:`SolveResult` with the samples and the counted NFE.
    """
    check_choice(method, SOLVERS, "solver")
    t_start = check_t0(t_start, "t_start")
    counter = NFECounter(velocity, network)
    options: dict[str, object] = {}
    if method in FIXED_STEP_METHODS:
        if (steps is None) == (step_size is None):
            raise ValueError(f"solver {method!r} needs exactly one of steps or step_size.")
        n = (
            check_positive_int(steps, "steps")
            if steps is not None
            else num_steps(t_start, step_size)
        )  # type: ignore[arg-type]
        times = torch.linspace(t_start, 1.0, n + 1, dtype=torch.float64)
        name, kwargs = FIXED_STEP_METHODS[method][0], {}
    else:
        times = torch.linspace(
            t_start, 1.0, trajectory_points if return_trajectory else 2, dtype=torch.float64
        )
        name, kwargs = method, {"rtol": rtol, "atol": atol}
    times = times.to(
        device=x_start.device, dtype=x_start.dtype if x_start.is_floating_point() else torch.float32
    )
    with counter:
        traj = odeint(counter, x_start, times, method=name, options=options, **kwargs)
    return SolveResult(
        samples=traj[-1],
        nfe=counter.nfe,
        times=times if return_trajectory else None,
        trajectory=traj if return_trajectory else None,
    )


Logits = Callable[..., Tensor]

#: the discrete samplers (docs/design.md §1, "Discrete data"; :func:`discrete_euler`)
DISCRETE_SAMPLERS = ("jump", "committed", "gated")


@torch.no_grad()
def discrete_euler(
    logits: Logits,
    x_start: Tensor,
    t_start: float,
    steps: int,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
    jump_probability: Callable[[float, float], float] | None = None,
    network: torch.nn.Module | None = None,
    sampler: str = "jump",
    threshold: float = 0.5,
    mask_id: int | None = None,
    committed_input: bool = False,
) -> SolveResult:
    r"""The mixture-path Euler sampler for masked discrete flows (docs/design.md §1).

    From ``t`` to ``t + h`` a position jumps, with probability ``jump_probability(t, t + h)``,
    to a draw from the predicted ``p(x1 | x_t, t)`` (``softmax(logits)``); the last step has
    probability 1, so every position ends on a predicted token.  The path owns the probability
    (:meth:`ws_fm.paths.MaskedPath.jump_probability`: ``(kappa_{t+h} - kappa_t) / (1 - kappa_t)``,
    whose rate is ``kappa'_t / (1 - kappa_t)``); the default is the linear schedule's
    ``h / (1 - t)``.  A jump to the current token changes nothing.

    ``sampler`` says what a jump may touch.  A position is *committed* once it has jumped:

    - ``"jump"``: every position may jump at every step, committed or not (the plain sampler:
      a token drawn earlier can be redrawn; on a warm start the network cannot tell a draft
      token from one it drew);
    - ``"committed"``: committed positions are frozen, so each position jumps exactly once, at
      its reveal time, as in the path's construction (``x_t`` shows ``x1`` there);
    - ``"gated"`` (confidence-gated correction): as ``"committed"``, and a position that still
      holds a draft token (neither ``MASK`` nor committed) keeps that token when it jumps if
      ``p(token | x_t, t) >= threshold``; only the draft tokens the network doubts are redrawn,
      so a good draft token survives and the draws go to the tokens the draft got wrong.

    With ``committed_input`` the network receives the committed positions:
    ``logits(x, t, committed)`` with a boolean ``(B, L)`` tensor (what the path marks as revealed
    in training, :attr:`~ws_fm.paths.PathSample.committed`); otherwise ``logits(x, t)``.

    Args:
        logits: ``logits(x, t[, committed]) -> (B, L, V)``.
        x_start: ``(B, L)`` token ids at ``t_start`` (``MASK`` and draft tokens).
        t_start: start time in ``[0, 1)``.
        steps: Euler steps over ``[t_start, 1]``.
        generator: random generator for the jumps and draws.
        return_trajectory: also return the state at every step.
        jump_probability: ``(t, t_next) -> probability`` (default ``(t_next - t) / (1 - t)``).
        network: the network whose forward calls are the NFE (default: each ``logits`` call),
            counted by :class:`NFECounter` as for the continuous solvers.
        sampler: ``"jump"`` (default), ``"committed"`` or ``"gated"`` (above).
        threshold: the probability a draft token needs to survive a ``"gated"`` jump, in
            ``(0, 1]`` (1 redraws every draft token that is not certain).
        mask_id: the ``MASK`` id (needed by ``"gated"``, to tell draft tokens from masks).
        committed_input: pass the committed positions to ``logits``.
    """
    check_positive_int(steps, "steps")
    check_choice(sampler, DISCRETE_SAMPLERS, "sampler")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold={threshold} must be in (0, 1].")
    if sampler == "gated" and mask_id is None:
        raise ValueError("sampler='gated' needs mask_id (to tell draft tokens from MASK).")
    jump = jump_probability or _linear_jump
    counter = NFECounter(logits, network)
    times = torch.linspace(t_start, 1.0, steps + 1, dtype=torch.float64)
    x, states = x_start.clone(), [x_start.clone()]
    committed = torch.zeros_like(x, dtype=torch.bool)
    with counter:
        for t, t_next in zip(times[:-1].tolist(), times[1:].tolist()):
            extra = (committed,) if committed_input else ()
            out = counter.evaluate(x, torch.full((x.shape[0],), t, device=x.device), *extra)
            jump_prob = 1.0 if t_next >= 1.0 else jump(t, t_next)
            jumps = torch.rand(x.shape, device=x.device, generator=generator) < jump_prob
            if sampler != "jump":
                jumps &= ~committed
            # Draw only where a position jumps: the categorical draw dominates the cost otherwise.
            p = torch.softmax(out[jumps].float(), -1)
            if len(p):
                new = torch.multinomial(p, 1, generator=generator).squeeze(1)
                if sampler == "gated":
                    old = x[jumps]
                    draft = old != mask_id
                    p_old = p.gather(1, old.clamp(max=p.shape[1] - 1)[:, None]).squeeze(1)
                    new = torch.where(draft & (p_old >= threshold), old, new)
                x = x.clone()
                x[jumps] = new
                committed = committed | jumps
            if return_trajectory:
                states.append(x.clone())
    return SolveResult(
        samples=x,
        nfe=counter.nfe,
        times=times if return_trajectory else None,
        trajectory=torch.stack(states) if return_trajectory else None,
    )


def _linear_jump(t: float, t_next: float) -> float:
    return (t_next - t) / (1.0 - t)
