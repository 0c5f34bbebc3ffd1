"""A compact time-conditioned UNet for small images (8x8 digits, 28x28 Fashion-MNIST).

DDPM-style: residual blocks with GroupNorm and a per-block projection of the time embedding,
strided-convolution downsampling, nearest upsampling to the skip's size (so odd sizes such as
7x7 work), and skip connections concatenated on the way up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .start_time import start_time_input

__all__ = ["SinusoidalTimeEmbedding", "UNet"]


class SinusoidalTimeEmbedding(nn.Module):
    """``t in [0, 1] -> [sin(w_k * 1000 t), cos(w_k * 1000 t)]`` with log-spaced ``w_k``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        self.register_buffer("freqs", torch.exp(-math.log(10_000) * torch.arange(half) / half))
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        ang = 1000 * t.reshape(-1, 1).float() * self.freqs
        return torch.cat([ang.sin(), ang.cos()], dim=1)


def _norm(ch: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, ch), ch)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(cin, groups), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout)
        self.norm2, self.conv2 = _norm(cout, groups), nn.Conv2d(cout, cout, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(emb)[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return h + self.skip(x)


def _time_mlp(channels: int, temb: int) -> nn.Module:
    return nn.Sequential(
        SinusoidalTimeEmbedding(channels),
        nn.Linear(channels, temb),
        nn.SiLU(),
        nn.Linear(temb, temb),
    )


class UNet(nn.Module):
    """``v(x, t)`` for images of shape ``(B, in_channels, H, W)``.

    Args:
        in_channels: image channels.
        channels: width of the first level.
        channel_mults: width multiplier per level; the image is halved between levels
            (``(1, 2)`` for 8x8, ``(1, 2, 2)`` for 28x28).
        num_res_blocks: residual blocks per level.
        dropout: dropout inside residual blocks.
        groups: GroupNorm groups (reduced to a divisor of the width where needed).
        start_conditioned: also take the start time ``t0`` of a refiner trained across ``t0``
            (``v(x, t, t0=...)``; its embedding is added to the time embedding).
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: int = 32,
        channel_mults: Sequence[int] = (1, 2),
        num_res_blocks: int = 1,
        dropout: float = 0.0,
        groups: int = 8,
        start_conditioned: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        temb = 4 * channels
        self.time = _time_mlp(channels, temb)
        self.start_conditioned = start_conditioned
        self.start = _time_mlp(channels, temb) if start_conditioned else None
        self.inp = nn.Conv2d(in_channels, channels, 3, padding=1)
        widths = [channels * m for m in channel_mults]
        self.down = nn.ModuleList()
        skips, ch = [channels], channels
        for i, w in enumerate(widths):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(ch, w, temb, groups, dropout))
                ch = w
                skips.append(ch)
            if i < len(widths) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid = nn.ModuleList(
            [ResBlock(ch, ch, temb, groups, dropout), ResBlock(ch, ch, temb, groups, dropout)]
        )
        self.up = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), w, temb, groups, dropout))
                ch = w
            if i > 0:
                self.up.append(nn.Conv2d(ch, ch, 3, padding=1))  # after nearest upsampling
        self.out = nn.Sequential(
            _norm(ch, groups), nn.SiLU(), nn.Conv2d(ch, in_channels, 3, padding=1)
        )
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: Tensor, t: Tensor, t0: Tensor | None = None) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet(in_channels={self.in_channels}) got inputs of shape {tuple(x.shape)}."
            )
        emb = self.time(t.expand(x.shape[0]) if t.ndim == 0 else t).to(x.dtype)
        for start in start_time_input(self.start, t0, x, "UNet"):
            emb = emb + start
        h = self.inp(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, emb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, hs.pop()], dim=1), emb)
            else:
                h = layer(F.interpolate(h, size=hs[-1].shape[-2:], mode="nearest"))
        return self.out(h)
