r"""``LSTMDraft``: a small LSTM language model over token ids, sampled left to right.

Trained by teacher forcing with the next-token cross-entropy; a start token ``BOS`` (id
``vocab_size``) precedes every sequence::

    L = - sum_i log p_theta(x[i] | BOS, x[0], ..., x[i-1]) / seq_len

Sampling runs the LSTM ``seq_len`` steps for the whole batch, drawing each token from the
softmax at ``temperature``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn

from .._checks import check_positive_int
from .text_module import TextDraftModule

__all__ = ["LSTMDraft"]


def _adam(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=2e-3)


class LSTMDraft(TextDraftModule):
    """Args:
    vocab_size: the tokenizer's number of tokens.
    seq_len: tokens per sequence.
    embed_dim, hidden_dim, num_layers: the LSTM's size.
    dropout: dropout between layers and before the output head.
    temperature: sampling temperature.
    optimizer: optimizer factory.
    """

    def __init__(
        self,
        vocab_size: int = 4000,
        seq_len: int = 64,
        embed_dim: int = 128,
        hidden_dim: int = 256,
        num_layers: int = 1,
        dropout: float = 0.1,
        temperature: float = 1.0,
        optimizer: OptimizerCallable = _adam,
    ) -> None:
        super().__init__(vocab_size, seq_len)
        if not temperature > 0:
            raise ValueError(f"temperature={temperature} must be > 0.")
        self.save_hyperparameters(ignore=["optimizer"])
        self.temperature, self.optimizer_factory = temperature, optimizer
        self.bos = vocab_size
        self.embed = nn.Embedding(vocab_size + 1, embed_dim)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden_dim,
            check_positive_int(num_layers, "num_layers"),
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim, vocab_size)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        h, state = self.lstm(self.embed(x), state)
        return self.head(self.drop(h)), state

    def nll(self, x: Tensor) -> Tensor:
        """Mean next-token cross-entropy of sequences ``x`` (teacher forcing)."""
        inp = torch.cat([torch.full_like(x[:, :1], self.bos), x[:, :-1]], 1)
        logits, _ = self(inp)
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), x.reshape(-1))

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        loss = self.nll(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self.log("val/loss", self.nll(batch), prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> Any:
        return self.optimizer_factory(self.parameters())

    @torch.no_grad()
    def teacher_force(self, x1: Tensor, generator: torch.Generator | None = None) -> Tensor:
        was_training = self.training
        self.eval()
        x1 = x1.to(self.device)
        inp = torch.cat([torch.full_like(x1[:, :1], self.bos), x1[:, :-1]], 1)
        logits, _ = self(inp)  # one pass: the prediction at i sees the real prefix x1[:i]
        p = torch.softmax(logits.float() / self.temperature, -1)
        out = torch.multinomial(p.reshape(-1, self.vocab_size), 1, generator=generator)
        self.train(was_training)
        return out.reshape(x1.shape)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        was_training = self.training
        self.eval()
        tok = torch.full((n, 1), self.bos, dtype=torch.long, device=self.device)
        out, state = [], None
        for _ in range(self.seq_len):
            logits, state = self(tok, state)
            p = torch.softmax(logits[:, -1].float() / self.temperature, -1)
            tok = torch.multinomial(p, 1, generator=generator)
            out.append(tok)
        self.train(was_training)
        return torch.cat(out, 1)
