"""``TokenTransformer``: a bidirectional, time-conditioned transformer over token sequences.

``net(x, t) -> logits`` with ``x`` of shape ``(B, L)`` (ids ``0 .. V`` where ``V`` is ``MASK``)
and ``t`` of shape ``(B,)``; the logits ``(B, L, V)`` cover the real tokens only (the model never
predicts ``MASK``).  Time enters as a sinusoidal embedding through an MLP, added to every
position; the layers are PyTorch's pre-norm ``TransformerEncoderLayer`` without a causal mask.
With ``committed_input`` a learned embedding of a boolean ``committed`` mask (positions already
settled to their final token, :attr:`ws_fm.paths.PathSample.committed`) is added too, so a warm
refiner can tell a draft token from a token it has committed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .unet import SinusoidalTimeEmbedding

__all__ = ["TokenTransformer"]


class TokenTransformer(nn.Module):
    """Args:
    vocab_size: number of real tokens ``V`` (the tokenizer's); ``MASK`` is id ``V``.
    seq_len: maximum sequence length (learned position embeddings).
    dim, depth, heads: width, number of layers and attention heads.
    dropout: dropout inside the layers.
    committed_input: also take ``committed`` ``(B, L)`` booleans (default all False).
    """

    def __init__(
        self,
        vocab_size: int = 4000,
        seq_len: int = 64,
        dim: int = 256,
        depth: int = 4,
        heads: int = 4,
        dropout: float = 0.0,
        committed_input: bool = False,
    ) -> None:
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.seq_len = check_positive_int(seq_len, "seq_len")
        self.mask_id = vocab_size
        self.tokens = nn.Embedding(vocab_size + 1, dim)
        self.positions = nn.Parameter(torch.randn(seq_len, dim) * 0.02)
        self.time = nn.Sequential(
            SinusoidalTimeEmbedding(dim), nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim)
        )
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)
        self.committed_input = bool(committed_input)
        self.committed = nn.Embedding(2, dim) if committed_input else None

    def forward(self, x: Tensor, t: Tensor, committed: Tensor | None = None) -> Tensor:
        if x.shape[1] > self.seq_len:
            raise ValueError(f"sequence length {x.shape[1]} exceeds seq_len={self.seq_len}.")
        h = self.tokens(x) + self.positions[: x.shape[1]] + self.time(t)[:, None, :]
        if self.committed is not None:
            flags = committed if committed is not None else torch.zeros_like(x, dtype=torch.bool)
            h = h + self.committed(flags.long())
        elif committed is not None:
            raise ValueError(
                "committed was given but this TokenTransformer was built without "
                "committed_input=True."
            )
        return self.head(self.norm(self.layers(h)))
