r"""Discrete masked mixture paths over token sequences (DESIGN.md §1, "Discrete data").

Tokens take ids ``0 .. V - 1``; ``MASK = V`` (``mask_id``).  Every position moves independently.

- Cold start (``t0 = 0``), the masked path of discrete flow matching (Gat et al. 2024;
  Campbell et al. 2024): ``x_t[i] = x1[i]`` with probability ``t``, else ``MASK``.
- Warm start from a draft ``xd``::

      x_t0[i] = xd[i]  with probability t0, else MASK
      x_t[i]  = x1[i]  with probability s = (t - t0) / (1 - t0), else x_t0[i]

  so at time ``t`` a position equals ``x1`` w.p. ``s``, the draft w.p. ``(1 - s) t0`` and
  ``MASK`` w.p. ``(1 - s)(1 - t0)``.  ``t0 = 0`` is exactly the cold path.

The model predicts ``p(x1[i] | x_t, t)`` at every position; the training target returned in
:attr:`PathSample.u_t` is therefore ``x1`` itself (cross-entropy on all positions, since draft
tokens may be wrong and must be correctable).

``noise`` is a tensor of uniforms of shape ``(2, *x1.shape)``: ``noise[0]`` decides which draft
tokens survive at ``t0``, ``noise[1]`` which positions already show ``x1`` at ``t``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_t0
from .paths import PathSample, ProbabilityPath, _check_same_shape, _expand_time

__all__ = ["MaskedPath"]


class MaskedPath(ProbabilityPath):
    """The masked mixture path from ``t0`` (0: cold start from all-``MASK``)."""

    def __init__(self, mask_id: int, t0: float = 0.0) -> None:
        if mask_id < 1:
            raise ValueError(f"mask_id={mask_id} must be the vocabulary size (>= 1).")
        self.mask_id, self.t0 = int(mask_id), check_t0(t0)

    @property
    def t_start(self) -> float:  # type: ignore[override]
        return self.t0

    def draw_noise(self, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The uniforms this path consumes, for a batch shaped like ``like``."""
        return torch.rand((2, *like.shape), device=like.device, generator=generator)

    def start(self, source: Tensor, noise: Tensor) -> Tensor:
        """``x_t0``: each draft token kept with probability ``t0``, else ``MASK``."""
        return torch.where(noise[0] < self.t0, source, torch.full_like(source, self.mask_id))

    def sample(self, source: Tensor, x1: Tensor, t: Tensor, noise: Tensor) -> PathSample:
        _check_same_shape(source, x1, "draft")
        s = ((_expand_time(t, x1.float()) - self.t0) / (1 - self.t0)).clamp(0, 1)
        x_t = torch.where(noise[1] < s, x1, self.start(source, noise))
        return PathSample(x_t=x_t, u_t=x1, t=torch.as_tensor(t))

    def __repr__(self) -> str:
        return f"MaskedPath(mask_id={self.mask_id}, t0={self.t0})"
