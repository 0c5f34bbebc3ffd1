"""Backbone networks (plain ``nn.Module``s): ``net(x, t) -> velocity`` with ``t`` of shape (B,)."""

from .mlp import MLP, FourierTimeEmbedding
from .unet import SinusoidalTimeEmbedding, UNet

__all__ = ["MLP", "FourierTimeEmbedding", "UNet", "SinusoidalTimeEmbedding"]
