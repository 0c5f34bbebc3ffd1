"""Probability paths: schedules, the paths built on them, and the generic warm-start wrapper.

- :mod:`.schedulers`: ``alpha_t, sigma_t`` of affine paths (CondOT, cosine) and ``kappa_t`` of
  masked token paths, with their bridges.
- :class:`AffinePath` (continuous data) and :class:`MaskedPath` (tokens): the cold paths.
- :class:`WarmStart`: any of them started from drafts at ``t0``.
"""

from .affine import AffinePath, ColdStartPath
from .base import PathSample, ProbabilityPath
from .masked import MaskedPath
from .schedulers import (
    CondOTScheduler,
    CosineScheduler,
    CubicKappa,
    KappaScheduler,
    LinearKappa,
    Scheduler,
)
from .warm_start import WarmStart, WarmStartPath

__all__ = [
    "PathSample",
    "ProbabilityPath",
    "AffinePath",
    "ColdStartPath",
    "MaskedPath",
    "WarmStart",
    "WarmStartPath",
    "Scheduler",
    "CondOTScheduler",
    "CosineScheduler",
    "KappaScheduler",
    "LinearKappa",
    "CubicKappa",
]
