"""Small convolutional networks on ``(C, H, W)`` images: an encoder (two stride-2 convolutions
and a linear head), a decoder (its mirror) and a critic (the encoder with one logit), shared by
the VAE and GAN drafts and the adversarial term of one-step distillation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvEncoder", "ConvDecoder", "ConvCritic", "MLPCritic"]


def _down_size(s: int) -> int:
    return (s + 1) // 2


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions and a linear head: image -> ``out_features``."""

    def __init__(self, shape: Sequence[int], channels: int, out_features: int) -> None:
        super().__init__()
        c, h, w = shape
        self.net = nn.Sequential(
            nn.Conv2d(c, channels, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(
                2 * channels * _down_size(_down_size(h)) * _down_size(_down_size(w)), out_features
            ),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Linear to a quarter-size map, two x2 upsamplings, resized to the image, ``tanh``."""

    def __init__(self, shape: Sequence[int], channels: int, latent: int) -> None:
        super().__init__()
        self.shape = tuple(shape)
        c, h, w = shape
        self.h0, self.w0, self.c0 = (
            _down_size(_down_size(h)),
            _down_size(_down_size(w)),
            2 * channels,
        )
        self.fc = nn.Linear(latent, self.c0 * self.h0 * self.w0)
        self.net = nn.Sequential(
            nn.BatchNorm2d(self.c0),
            nn.ReLU(),
            nn.ConvTranspose2d(self.c0, channels, 4, stride=2, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, c, 3, padding=1),
        )

    def forward(self, z: Tensor) -> Tensor:
        x = self.net(self.fc(z).reshape(-1, self.c0, self.h0, self.w0))
        return torch.tanh(
            F.interpolate(x, size=self.shape[1:], mode="bilinear", align_corners=False)
        )


class ConvCritic(ConvEncoder):
    """A discriminator on images: ``D(x)`` of shape ``(B,)`` (logits)."""

    def __init__(self, sample_shape: Sequence[int], channels: int = 32) -> None:
        super().__init__(sample_shape, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).squeeze(-1)


class MLPCritic(nn.Module):
    """A discriminator on vectors: ``D(x)`` of shape ``(B,)`` (logits), ``depth`` hidden layers
    of width ``hidden`` with leaky ReLUs."""

    def __init__(self, dim: int, hidden: int = 128, depth: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).squeeze(-1)
