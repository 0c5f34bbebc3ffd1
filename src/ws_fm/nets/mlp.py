"""A time-conditioned MLP for low-dimensional data (the toy 2-D sets)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .start_time import start_time_input

__all__ = ["FourierTimeEmbedding", "MLP"]


class FourierTimeEmbedding(nn.Module):
    """``t -> [t, sin(2 pi k t), cos(2 pi k t)]`` for ``k = 1..num_frequencies``.

    The raw ``t`` keeps the map injective on [0, 1]; the harmonics let a small network vary
    quickly in ``t``.
    """

    def __init__(self, num_frequencies: int = 8) -> None:
        super().__init__()
        self.register_buffer("freqs", 2 * math.pi * torch.arange(1, num_frequencies + 1).float())
        self.dim = 1 + 2 * num_frequencies

    def forward(self, t: Tensor) -> Tensor:
        t = t.reshape(-1, 1).to(self.freqs.dtype)
        ang = t * self.freqs
        return torch.cat([t, ang.sin(), ang.cos()], dim=1)


class MLP(nn.Module):
    """``v(x, t)``: an MLP on ``[x, embed(t)]`` with SiLU activations; with ``num_classes`` it
    is class-conditional, ``v(x, t, y)`` on ``[x, embed(t), embed(y)]``; with
    ``start_conditioned`` it also takes the warm start time, ``v(x, t, t0=...)`` on
    ``[x, embed(t), embed(t0)]`` (:class:`~ws_fm.refiners.T0ConditionedFlowMatching`).

    Args:
        dim: data dimension.
        hidden: width of each hidden layer.
        depth: number of hidden layers.
        time_frequencies: harmonics in the time embedding.
        num_classes: number of class labels ``y`` (None: unconditional).
        start_conditioned: take the start time ``t0`` of a refiner trained across ``t0``.
    """

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 256,
        depth: int = 3,
        time_frequencies: int = 8,
        num_classes: int | None = None,
        start_conditioned: bool = False,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.time_embedding = FourierTimeEmbedding(time_frequencies)
        self.num_classes = num_classes
        self.label_embedding = nn.Embedding(num_classes, 16) if num_classes else None
        self.start_conditioned = start_conditioned
        self.start_embedding = FourierTimeEmbedding(time_frequencies) if start_conditioned else None
        layers: list[nn.Module] = []
        width = dim + self.time_embedding.dim + (16 if num_classes else 0)
        width += self.time_embedding.dim if start_conditioned else 0
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(
        self, x: Tensor, t: Tensor, y: Tensor | None = None, t0: Tensor | None = None
    ) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"MLP(dim={self.dim}) got inputs of shape {tuple(x.shape)}.")
        emb = self.time_embedding(t.expand(x.shape[0]) if t.ndim == 0 else t).to(x.dtype)
        parts = [x, emb]
        if self.label_embedding is not None:
            if y is None:
                raise ValueError(f"MLP(num_classes={self.num_classes}) needs class labels y.")
            parts.append(self.label_embedding(y).to(x.dtype))
        elif y is not None:
            raise ValueError("MLP got labels y but was built without num_classes.")
        parts += start_time_input(self.start_embedding, t0, x, "MLP")
        return self.net(torch.cat(parts, dim=1))
