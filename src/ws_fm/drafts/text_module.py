"""``TextDraftModule``: the base of token-sequence drafts (n-gram, LSTM)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._checks import check_positive_int
from .module import DraftModule

__all__ = ["TextDraftModule"]


class TextDraftModule(DraftModule):
    """A draft of ``(seq_len,)`` token sequences with ids in ``[0, vocab_size)``.

    In ``setup`` it records the fingerprint of the DataModule's tokenizer (saved in checkpoints)
    and checks ``vocab_size`` against it, so that a refiner can refuse a draft that speaks
    another tokenizer.

    Args:
        vocab_size: the tokenizer's number of tokens.
        seq_len: tokens per sequence.
    """

    def __init__(self, vocab_size: int, seq_len: int) -> None:
        super().__init__((check_positive_int(seq_len, "seq_len"),))
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.seq_len = seq_len
        self.tokenizer_fingerprint: str | None = None

    def teacher_force(self, x1: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The draft run along real sequences ``x1`` ``(B, L)``: token ``i`` drawn from the
        draft's prediction given the real prefix ``x1[:i]`` (docs/design.md §1, ``teacher_forced``)."""
        raise NotImplementedError

    def setup(self, stage: str) -> None:
        super().setup(stage)
        from ..lookups import tokenizer_of

        tok = tokenizer_of(self._trainer)
        if tok is None:
            return
        if tok.vocab_size != self.vocab_size:
            raise ValueError(
                f"{type(self).__name__}(vocab_size={self.vocab_size}) does not match the data's "
                f"tokenizer ({tok.vocab_size} tokens); set vocab_size to {tok.vocab_size}."
            )
        self.tokenizer_fingerprint = tok.fingerprint

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["tokenizer_fingerprint"] = self.tokenizer_fingerprint

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.tokenizer_fingerprint = checkpoint.get("tokenizer_fingerprint")
