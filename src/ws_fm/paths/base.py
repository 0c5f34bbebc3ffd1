r"""The interface every probability path implements.

Convention (docs/design.md §1): ``t = 0`` is the source, ``t = 1`` is data.  A path knows how to

- ``start(source, noise)``: the state at :attr:`t_start` from which sampling integrates to 1;
- ``place(source, noise, t, scale)``: put a source (a draft) where the path is at time ``t``
  (for an affine path ``alpha_t * source + scale * sigma_t * noise``);
- ``bridge(x_s, x1, s, t, noise)``: the path conditioned on its state ``x_s`` at time ``s`` and on
  the data ``x1``, at times ``t in [s, 1]``, with the target the network regresses on;
- ``sample(source, x1, t, noise)``: one training draw, ``bridge(start(source, noise), x1,
  t_start, t, noise)``;
- ``sample_from(x_start, x1, t, noise)``: the same from a start state formed elsewhere (warm
  ReFlow and distillation pair a given ``x_t0`` with an endpoint).

``source`` is what a coupling pairs with the data: the noise itself for a cold path, the draft for
a warm one (:class:`~ws_fm.paths.WarmStart`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["PathSample", "ProbabilityPath", "expand_time", "check_same_shape"]


@dataclass(frozen=True)
class PathSample:
    """A point on the path and the target the network regresses on (``u_t``: the velocity for
    affine paths, ``x1`` itself for masked token paths); ``committed`` (token paths) marks the
    positions that already show their final value ``x1`` by the path's construction."""

    x_t: Tensor
    u_t: Tensor
    t: Tensor
    committed: Tensor | None = None


def expand_time(t: Tensor | float, like: Tensor) -> Tensor:
    """Broadcast per-sample times ``t`` of shape ``(B,)`` (or a scalar) against ``like``."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t
    if t.shape[0] != like.shape[0]:
        raise ValueError(f"t has {t.shape[0]} entries but the batch has {like.shape[0]} samples.")
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def check_same_shape(source: Tensor, x1: Tensor, what: str) -> None:
    if source.shape != x1.shape:
        raise ValueError(
            f"{what} shape {tuple(source.shape)} differs from data shape {tuple(x1.shape)}; "
            f"the {what} must have the data's shape."
        )


class ProbabilityPath:
    """Interface of a path from ``t_start`` to 1 (see the module docstring)."""

    t_start: float = 0.0

    def draw_noise(self, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The randomness :meth:`start`, :meth:`place` and :meth:`bridge` consume."""
        return torch.randn(like.shape, device=like.device, dtype=like.dtype, generator=generator)

    def start(self, source: Tensor, noise: Tensor | None = None) -> Tensor:
        """The state at ``t_start``; a cold path starts from its source (the noise) itself."""
        return source

    def place(self, source: Tensor, noise: Tensor, t: float, scale: float = 1.0) -> Tensor:
        raise NotImplementedError

    def bridge(
        self, x_s: Tensor, x1: Tensor, s: float, t: Tensor | float, noise: Tensor | None = None
    ) -> PathSample:
        raise NotImplementedError

    def sample(
        self, source: Tensor, x1: Tensor, t: Tensor | float, noise: Tensor | None = None
    ) -> PathSample:
        """``x_t`` and its target for paired ``(source, x1)`` at times ``t`` in
        ``[t_start, 1]``."""
        check_same_shape(source, x1, self.source_name)
        if noise is None:
            noise = self.draw_noise(source)
        return self.bridge(self.start(source, noise), x1, self.t_start, t, noise)

    def sample_from(
        self, x_start: Tensor, x1: Tensor, t: Tensor | float, noise: Tensor | None = None
    ) -> PathSample:
        """Like :meth:`sample`, from a given state ``x_start`` at ``t_start``."""
        check_same_shape(x_start, x1, "start state")
        if noise is None:
            noise = self.draw_noise(x_start)
        return self.bridge(x_start, x1, self.t_start, t, noise)

    @property
    def source_name(self) -> str:
        return "noise"
