r"""``NGramDraft``: an interpolated n-gram language model (counts, closed form).

With ``n = 3`` and weights ``lambda`` (summing to 1), the next-token distribution is::

    p(w | u, v) = l3 c(u v w) / c(u v) + l2 c(v w) / c(v) + l1 (c(w) + k) / (N + k V)

where a context never seen drops its term and the remaining weights are renormalised; ``k`` is
add-k smoothing of the unigram, so every token has non-zero probability.  Counts are fitted in
``setup`` from the training sequences (no gradient steps), stored in compressed-row form as
buffers (so checkpoints and the draft bank's fingerprint carry them), and sampling draws whole
sequences left to right, ``seq_len`` vectorised steps for a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .module import ClosedFormDraft
from .text_module import TextDraftModule

__all__ = ["NGramDraft"]


def _csr(keys: Tensor, nxt: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sorted unique context keys, row pointers, next tokens and counts of ``(key, next)``."""
    pair, counts = torch.unique(torch.stack([keys, nxt], 1), dim=0, return_counts=True)
    uniq, per_row = torch.unique_consecutive(pair[:, 0], return_counts=True)
    ptr = torch.zeros(len(uniq) + 1, dtype=torch.long)
    ptr[1:] = per_row.cumsum(0)
    return uniq.contiguous(), ptr, pair[:, 1].contiguous(), counts.float()


def _dense_rows(
    keys: Tensor, ptr: Tensor, col: Tensor, val: Tensor, query: Tensor, vocab: int
) -> Tensor:
    """Normalised rows for the ``query`` context keys as a dense ``(B, V)`` (zeros if unseen)."""
    out = torch.zeros(len(query), vocab, device=val.device)
    if len(keys) == 0:
        return out
    query = query.contiguous()
    r = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
    found = keys[r] == query
    lens = (ptr[r + 1] - ptr[r]) * found
    b = torch.repeat_interleave(torch.arange(len(query), device=val.device), lens)
    offsets = torch.arange(int(lens.sum()), device=val.device) - torch.repeat_interleave(
        lens.cumsum(0) - lens, lens
    )
    j = torch.repeat_interleave(ptr[r], lens) + offsets
    out.index_put_((b, col[j]), val[j], accumulate=True)
    return out / out.sum(1, keepdim=True).clamp_min(1e-12)


class NGramDraft(ClosedFormDraft, TextDraftModule):
    """Interpolated trigram (``n = 3``), bigram or unigram draft over token ids.

    Args:
        vocab_size: the tokenizer's number of tokens.
        seq_len: tokens per sequence.
        n: order, 1 to 3.
        weights: interpolation weights from the highest order down (``n`` numbers).
        add_k: add-k smoothing of the unigram.
    """

    _COUNTS = ("uni", "bi_keys", "bi_ptr", "bi_col", "bi_val", "tri_keys", "tri_ptr")
    _COUNTS += ("tri_col", "tri_val")

    def __init__(
        self,
        vocab_size: int = 4000,
        seq_len: int = 64,
        n: int = 3,
        weights: Sequence[float] = (0.6, 0.3, 0.1),
        add_k: float = 0.01,
    ) -> None:
        super().__init__(vocab_size, seq_len)
        if n not in (1, 2, 3):
            raise ValueError(f"n={n}: NGramDraft supports orders 1, 2 and 3.")
        if len(weights) != n or min(weights) < 0 or abs(sum(weights) - 1) > 1e-6:
            raise ValueError(
                f"weights={list(weights)} must be {n} non-negative numbers summing to 1."
            )
        self.save_hyperparameters()
        self.n, self.weights, self.add_k = n, tuple(float(w) for w in weights), float(add_k)
        self.automatic_optimization = False
        for name in self._COUNTS:
            floating = name == "uni" or name.endswith("_val")
            self.register_buffer(
                name, torch.zeros(0, dtype=torch.float if floating else torch.long)
            )

    @property
    def is_fitted(self) -> bool:
        return self.uni.numel() == self.vocab_size

    @torch.no_grad()
    def fit(self, data: Tensor) -> NGramDraft:
        x = data.long().cpu()
        if int(x.max()) >= self.vocab_size or int(x.min()) < 0:
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}).")
        V = self.vocab_size
        self.uni = torch.bincount(x.reshape(-1), minlength=V).float()
        self.bi_keys, self.bi_ptr, self.bi_col, self.bi_val = _csr(
            x[:, :-1].reshape(-1), x[:, 1:].reshape(-1)
        )
        self.tri_keys, self.tri_ptr, self.tri_col, self.tri_val = _csr(
            (x[:, :-2] * V + x[:, 1:-1]).reshape(-1), x[:, 2:].reshape(-1)
        )
        return self

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # The count tables' sizes depend on the corpus: take them from the checkpoint.
        for name in self._COUNTS:
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def next_token_probs(self, history: Tensor) -> Tensor:
        """``(B, V)`` next-token probabilities given the last tokens ``history`` ``(B, h)``."""
        V, dev = self.vocab_size, self.uni.device
        uni = (self.uni + self.add_k) / (self.uni.sum() + self.add_k * V)
        terms = [uni.expand(len(history), V)]
        if self.n >= 2 and history.shape[1] >= 1:
            terms.append(
                _dense_rows(self.bi_keys, self.bi_ptr, self.bi_col, self.bi_val, history[:, -1], V)
            )
        if self.n >= 3 and history.shape[1] >= 2:
            key = history[:, -2] * V + history[:, -1]
            terms.append(
                _dense_rows(self.tri_keys, self.tri_ptr, self.tri_col, self.tri_val, key, V)
            )
        w = torch.tensor(self.weights[::-1][: len(terms)], device=dev)  # low order first
        seen = torch.stack([(t.sum(1) > 0).float() for t in terms], 1)
        mix = seen * w
        # Where every available term has weight 0 (e.g. the first tokens with weights (1, 0, 0)),
        # fall back to an equal mix of the available terms.
        mix = torch.where(mix.sum(1, keepdim=True) > 0, mix, seen)
        seen = mix / mix.sum(1, keepdim=True)
        return sum(seen[:, i : i + 1] * t for i, t in enumerate(terms))  # type: ignore[return-value]

    @torch.no_grad()
    def teacher_force(self, x1: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x1 = x1.to(self.uni.device)
        out = torch.empty_like(x1)
        for i in range(x1.shape[1]):
            p = self.next_token_probs(x1[:, max(0, i - 2) : i])
            out[:, i] = torch.multinomial(p, 1, generator=generator).squeeze(1)
        return out

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        if not self.is_fitted:
            raise RuntimeError(
                "NGramDraft is not fitted: call fit(train_sequences) or train it with a "
                "TextDataModule."
            )
        x = torch.empty(n, self.seq_len, dtype=torch.long, device=self.uni.device)
        for i in range(self.seq_len):
            p = self.next_token_probs(x[:, max(0, i - 2) : i])
            x[:, i] = torch.multinomial(p, 1, generator=generator).squeeze(1)
        return x
