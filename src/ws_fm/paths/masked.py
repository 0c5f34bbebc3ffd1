r"""``MaskedPath``: the masked mixture path over token sequences (docs/design.md §1, "Discrete data").

Tokens take ids ``0 .. V - 1``; ``MASK = V`` (``mask_id``).  Every position moves independently.
The cold path (Gat et al. 2024; Campbell et al. 2024) starts from all-``MASK`` at ``t = 0`` and::

    x_t[i] = x1[i]  with probability kappa_t, else MASK        (kappa_t = t by default)

Placing a draft ``xd`` at ``t0`` and bridging from there (what :class:`~ws_fm.paths.WarmStart`
does) gives the warm path::

    x_t0[i] = xd[i]  with probability 1 - sigma (1 - kappa_t0), else MASK
    x_t[i]  = x1[i]  with probability (kappa_t - kappa_t0) / (1 - kappa_t0), else x_t0[i]

``sigma = 1`` (default) masks the draft as the cold path is masked at ``t0``; ``sigma = 0`` keeps
every draft token, so a right draft token is never thrown away before the refiner has seen it.

The model predicts ``p(x1[i] | x_t, t)`` at every position; the training target in
:attr:`PathSample.u_t` is therefore ``x1`` itself (cross-entropy on all positions, since draft
tokens may be wrong and must be correctable).  The sampler's jump probability over a step comes
from :meth:`MaskedPath.jump_probability`.  :attr:`PathSample.committed` marks the revealed
positions (``x_t[i] = x1[i]`` by construction, as opposed to a draft token that happens to be
right); a network built with ``committed_input`` receives it, and the ``committed`` and
``gated`` samplers of :func:`~ws_fm.solvers.discrete_euler` freeze those positions.

``noise`` is a tensor of uniforms of shape ``(2, *x1.shape)``: ``noise[0]`` decides which draft
tokens survive at ``t0``, ``noise[1]`` which positions already show ``x1`` at ``t``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import PathSample, ProbabilityPath, check_same_shape, expand_time
from .schedulers import KappaScheduler, LinearKappa

__all__ = ["MaskedPath"]


class MaskedPath(ProbabilityPath):
    """The cold masked path from all-``MASK`` at ``t = 0``.

    Args:
        mask_id: the ``MASK`` id, equal to the vocabulary size ``V``.
        scheduler: ``kappa_t`` (default :class:`~ws_fm.paths.LinearKappa`, ``kappa_t = t``).
    """

    t_start = 0.0

    def __init__(self, mask_id: int, scheduler: KappaScheduler | None = None) -> None:
        if mask_id < 1:
            raise ValueError(f"mask_id={mask_id} must be the vocabulary size (>= 1).")
        self.mask_id = int(mask_id)
        self.scheduler = scheduler if scheduler is not None else LinearKappa()

    def draw_noise(self, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The uniforms this path consumes, for a batch shaped like ``like``."""
        return torch.rand((2, *like.shape), device=like.device, generator=generator)

    def place(self, source: Tensor, noise: Tensor, t: float, scale: float = 1.0) -> Tensor:
        """Each source token kept with probability ``1 - scale * (1 - kappa_t)``, else ``MASK``:
        ``scale = 1`` masks as the cold path does at ``t`` (the draft at the cold path's masking
        level), ``scale = 0`` keeps every source token (the whole draft, no mask), as ``sigma``
        scales the noise of the Gaussian paths (``scale`` in ``[0, 1]``)."""
        check_same_shape(source, noise[0], "noise")
        if not 0.0 <= scale <= 1.0:
            raise ValueError(
                f"sigma={scale}: on the masked path it is the fraction of the cold path's masks "
                "placed over the draft at t0, in [0, 1] (0 keeps the whole draft)."
            )
        keep = noise[0] < 1.0 - scale * (1.0 - self.scheduler.kappa(t))
        return torch.where(keep, source, torch.full_like(source, self.mask_id))

    def bridge(
        self, x_s: Tensor, x1: Tensor, s: float, t: Tensor | float, noise: Tensor | None = None
    ) -> PathSample:
        check_same_shape(x_s, x1, "start state")
        if noise is None:
            noise = self.draw_noise(x1)
        p = self.scheduler.reveal_probability(s, expand_time(t, x1.float())).clamp(0, 1)
        revealed = noise[1] < p
        return PathSample(
            x_t=torch.where(revealed, x1, x_s), u_t=x1, t=torch.as_tensor(t), committed=revealed
        )

    def jump_probability(self, t: float, t_next: float) -> float:
        """Probability that a position jumps to a draw from ``p(x1 | x_t, t)`` over a sampler
        step from ``t`` to ``t_next``: ``(kappa(t_next) - kappa(t)) / (1 - kappa(t))``, and 1 on
        the last step (every position ends on a predicted token)."""
        if t_next >= 1.0:
            return 1.0
        return float(self.scheduler.reveal_probability(t, t_next))

    @property
    def source_name(self) -> str:
        return "draft"

    def __repr__(self) -> str:
        return f"MaskedPath(mask_id={self.mask_id}, scheduler={self.scheduler!r})"
