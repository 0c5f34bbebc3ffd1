r"""``CopyChainLanguage``: a synthetic token language whose validity a program checks exactly.

A sentence is a *chain* ``w`` of ``half_len`` symbols over ``vocab_size`` symbols, written twice::

    x = w_1 ... w_H  w_1 ... w_H          (seq_len = 2 H)

where each symbol may only be followed by one of ``branching`` allowed successors (a fixed
random table ``successors[v]``, drawn from ``seed``).  Its constraints, checked exactly:

- ``H`` **copy** constraints ``x[H + i] = x[i]``: long-range (``H`` positions apart, beyond the
  window of any n-gram draft of order ``<= H``), the part a bidirectional transformer must learn;
- ``2 (H - 1)`` **transition** constraints ``x[i + 1] in successors[x[i]]`` inside each half:
  local, what an n-gram draft gets right.

The graded quality of a sample is the fraction of its ``3 H - 2`` constraints that hold; a sample
is *valid* when all hold.  The language has ``V * K^(H - 1)`` sentences (2.8 million for the
defaults ``V = 16, K = 3, H = 12``), so a model that memorised a training set of 20,000 cannot
pass for one that learned the rule (:func:`ws_fm.metrics.structured.copied_fraction` measures it).

Why this language (measured on a 2-core CPU, docs/design.md §4 budget): a 3-layer, 128-wide
bidirectional transformer trained as a cold masked flow learns the copy in about 1,000 Adam steps
(batch 128, about 100 s) and reaches 98 % of the constraints and 72 % fully valid samples at 100
sampler steps after 3,000, while 10 steps give 89 % and 12 %: the number of steps matters, as a
benchmark of few-step sampling needs.  Two-type brackets of 32 tokens and palindromes of 16 tokens
over 8 symbols gave no valid sample in 4-8 minutes of training the same model.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from .._checks import check_positive_int

__all__ = ["CopyChainLanguage"]


class CopyChainLanguage:
    """The copy-chain language (module docstring).

    Args:
        vocab_size: number of symbols ``V`` (token ids ``0 .. V - 1``; at most 26 are printed
            as letters).
        half_len: length ``H`` of the chain; sequences have ``2 H`` tokens.
        branching: allowed successors per symbol ``K`` (``1 <= K <= V``).
        seed: seed of the successor table (the language itself).
    """

    def __init__(
        self, vocab_size: int = 16, half_len: int = 12, branching: int = 3, seed: int = 0
    ) -> None:
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.half_len = check_positive_int(half_len, "half_len")
        self.branching = check_positive_int(branching, "branching")
        if branching > vocab_size:
            raise ValueError(f"branching={branching} exceeds vocab_size={vocab_size}.")
        if half_len < 2:
            raise ValueError(f"half_len={half_len} must be at least 2 (one transition).")
        self.seed = int(seed)
        g = torch.Generator().manual_seed(self.seed)
        self.successors = torch.stack(
            [torch.randperm(vocab_size, generator=g)[:branching] for _ in range(vocab_size)]
        )
        allowed = torch.zeros(vocab_size, vocab_size, dtype=torch.bool)
        allowed[torch.arange(vocab_size)[:, None], self.successors] = True
        self.allowed = allowed  # allowed[a, b]: b may follow a

    @property
    def seq_len(self) -> int:
        return 2 * self.half_len

    @property
    def num_constraints(self) -> int:
        return 3 * self.half_len - 2

    @property
    def fingerprint(self) -> str:
        """A hash of the language's settings (what a cache of its samples depends on)."""
        key = f"copychain:{self.vocab_size}:{self.half_len}:{self.branching}:{self.seed}"
        return hashlib.sha256(key.encode()).hexdigest()

    def generate(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` valid sentences ``(n, 2 H)``: a uniform first symbol, then uniform allowed
        successors, the chain written twice."""
        w = torch.empty(n, self.half_len, dtype=torch.long)
        w[:, 0] = torch.randint(self.vocab_size, (n,), generator=generator)
        for i in range(1, self.half_len):
            pick = torch.randint(self.branching, (n,), generator=generator)
            w[:, i] = self.successors[w[:, i - 1], pick]
        return torch.cat([w, w], 1)

    def constraints(self, x: Tensor) -> Tensor:
        """``(N, 3 H - 2)`` booleans: the ``H`` copy constraints, then the ``H - 1`` transitions
        of each half."""
        x = self._check(x).cpu()
        h = self.half_len
        a, b = x[:, :h], x[:, h:]
        copy = a == b
        trans = [self.allowed[half[:, :-1], half[:, 1:]] for half in (a, b)]
        return torch.cat([copy, *trans], 1)

    def is_valid(self, x: Tensor) -> Tensor:
        """``(N,)`` booleans: every constraint holds."""
        return self.constraints(x).all(1)

    def scores(self, x: Tensor) -> dict[str, float]:
        """``constraints`` (fraction of all constraints that hold, the graded quality),
        ``valid`` (fraction of fully valid samples), and the copy and transition fractions."""
        c = self.constraints(x).float()
        h = self.half_len
        return {
            "constraints": float(c.mean()),
            "valid": float(c.min(1).values.mean()),
            "copy": float(c[:, :h].mean()),
            "transitions": float(c[:, h:].mean()),
        }

    def decode(self, x: Tensor) -> list[str]:
        """Sentences as text: letters for symbols (ids past 25 as ``<id>``), the halves split by
        ``|``."""

        def sym(i: int) -> str:
            return chr(ord("a") + i) if i < 26 else f"<{i}>"

        h = self.half_len
        return [
            "".join(sym(i) for i in row[:h]) + " | " + "".join(sym(i) for i in row[h:])
            for row in self._check(x).tolist()
        ]

    def _check(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.seq_len:
            raise ValueError(
                f"expected token ids of shape (N, {self.seq_len}) for this language "
                f"(half_len={self.half_len}), got {tuple(x.shape)}."
            )
        if x.dtype != torch.long or (
            len(x) and (int(x.min()) < 0 or int(x.max()) >= self.vocab_size)
        ):
            raise ValueError(
                f"token ids must be integers in [0, {self.vocab_size}) (a sample holding MASK = "
                f"{self.vocab_size} was not finished)."
            )
        return x

    def __repr__(self) -> str:
        return (
            f"CopyChainLanguage(vocab_size={self.vocab_size}, half_len={self.half_len}, "
            f"branching={self.branching}, seed={self.seed})"
        )
