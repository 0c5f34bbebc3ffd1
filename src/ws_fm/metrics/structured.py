r"""Metrics of token samples that keep memorising and collapse from passing for validity.

- :func:`copied_fraction`: the fraction of samples that occur verbatim in the training set;
- :func:`distinct_ngrams`: unique token n-grams / all token n-grams over the set (Li et al.,
  2016, on token ids);
- :func:`distinct_samples`: unique samples / samples.

The validity of a sample is its language's business
(:meth:`ws_fm.data.structured.CopyChainLanguage.scores`).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["copied_fraction", "distinct_ngrams", "distinct_samples"]


def _rows(x: Tensor) -> Tensor:
    if x.ndim != 2:
        raise ValueError(f"expected (N, L) token ids, got shape {tuple(x.shape)}.")
    return x.detach().cpu().long()


def copied_fraction(samples: Tensor, train: Tensor) -> float:
    """Fraction of ``samples`` ``(N, L)`` equal to some row of ``train`` ``(M, L)``."""
    s, t = _rows(samples), _rows(train)
    if s.shape[1] != t.shape[1]:
        raise ValueError(f"samples have length {s.shape[1]} but the training set {t.shape[1]}.")
    if not len(s):
        return 0.0
    # unique rows of both together: a sample is copied when its row also comes from train
    both = torch.cat([t.unique(dim=0), s])
    _, inverse = both.unique(dim=0, return_inverse=True)
    in_train = torch.zeros(int(inverse.max()) + 1, dtype=torch.bool)
    in_train[inverse[: len(both) - len(s)]] = True
    return float(in_train[inverse[len(both) - len(s) :]].float().mean())


def distinct_ngrams(samples: Tensor, n: int = 2) -> float:
    """Unique token ``n``-grams / all token ``n``-grams of ``samples`` ``(N, L)``."""
    s = _rows(samples)
    if s.shape[1] < n or not len(s):
        return 0.0
    grams = s.unfold(1, n, 1).reshape(-1, n)
    return len(grams.unique(dim=0)) / len(grams)


def distinct_samples(samples: Tensor) -> float:
    """Unique rows / rows of ``samples`` ``(N, L)``."""
    s = _rows(samples)
    return len(s.unique(dim=0)) / len(s) if len(s) else 0.0
