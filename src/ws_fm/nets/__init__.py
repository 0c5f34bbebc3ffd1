"""Backbone networks (plain ``nn.Module``s): ``net(x, t) -> velocity`` (or token logits) with
``t`` of shape (B,)."""

from .conv import ConvCritic, ConvDecoder, ConvEncoder, MLPCritic
from .mlp import MLP, FourierTimeEmbedding
from .transformer import TokenTransformer
from .unet import SinusoidalTimeEmbedding, UNet

__all__ = [
    "MLP",
    "FourierTimeEmbedding",
    "UNet",
    "SinusoidalTimeEmbedding",
    "TokenTransformer",
    "ConvEncoder",
    "ConvDecoder",
    "ConvCritic",
    "MLPCritic",
]
