r"""``VAEDraft``: a small convolutional VAE; drafts are decoder outputs of prior samples.

Loss per image (Gaussian decoder with fixed variance, weighted KL)::

    L = || x - D(z) ||^2 + beta * KL(N(mu(x), sigma(x)^2) || N(0, I)),   z = mu + sigma * eps
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from ..nets.conv import ConvDecoder, ConvEncoder
from .module import DraftModule

__all__ = ["VAEDraft", "ConvEncoder", "ConvDecoder"]


class VAEDraft(DraftModule):
    """Convolutional VAE.

    Args:
        sample_shape: ``(C, H, W)``.
        latent_dim: latent size.
        channels: width of the first convolution.
        beta: KL weight.
        optimizer: optimizer factory.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 8, 8),
        latent_dim: int = 16,
        channels: int = 32,
        beta: float = 1.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
    ) -> None:
        super().__init__(sample_shape)
        self.save_hyperparameters(ignore=["optimizer"])
        self.latent_dim, self.beta, self.optimizer_factory = latent_dim, beta, optimizer
        self.encoder = ConvEncoder(self.sample_shape, channels, 2 * latent_dim)
        self.decoder = ConvDecoder(self.sample_shape, channels, latent_dim)

    def loss(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        recon = F.mse_loss(self.decoder(z), x, reduction="sum") / x.shape[0]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / x.shape[0]
        return recon + self.beta * kl, recon, kl

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        loss, recon, kl = self.loss(batch)
        self.log_dict({"train/loss": loss, "train/recon": recon, "train/kl": kl}, prog_bar=True)
        return loss

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self.log("val/loss", self.loss(batch)[0], sync_dist=True)

    def configure_optimizers(self) -> Any:
        return self.optimizer_factory(self.parameters())

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        was_training = self.decoder.training
        self.decoder.eval()
        z = torch.randn(n, self.latent_dim, device=self.device, generator=generator)
        out = self.decoder(z)
        self.decoder.train(was_training)
        return out
