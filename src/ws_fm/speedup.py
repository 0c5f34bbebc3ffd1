r"""Speed-up accounting of DESIGN.md §2, on measured (NFE, quality) points.

- *guaranteed*: ``nfe_cold(h) / nfe_warm(h, t0)`` at equal step size ``h``, both counted; equal
  to ``1 / (1 - t0)`` up to rounding.
- *quality-matched*: ``S = nfe_cold(Q_ws) / nfe_ws``, where ``nfe_cold(Q)`` is the smallest NFE
  on the cold grid whose quality reaches ``Q``.  When no cold point reaches ``Q_ws``, ``S`` is
  only bounded below by ``max(grid) / nfe_ws``; :func:`quality_matched_speedup` says so.
- *wall-clock*: ``T_cold(reference) / (T_draft + T_refine)``.
- *at parity*: quality within 5% of the reference ``Q_ref``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "better",
    "reaches",
    "within",
    "nfe_to_reach",
    "quality_matched_speedup",
    "MatchedSpeedup",
]


def better(a: float, b: float, lower_is_better: bool = True) -> bool:
    """``a`` is strictly better than ``b``."""
    return a < b if lower_is_better else a > b


def reaches(q: float, target: float, lower_is_better: bool = True) -> bool:
    """Quality ``q`` is at least as good as ``target``."""
    return q <= target if lower_is_better else q >= target


def within(
    q: float, reference: float, tolerance: float = 0.05, lower_is_better: bool = True
) -> bool:
    """``q`` is within ``tolerance`` (relative) of ``reference``, or better: "at parity"."""
    bound = reference * (1 + tolerance) if lower_is_better else reference * (1 - tolerance)
    return reaches(q, bound, lower_is_better)


def nfe_to_reach(
    curve: Iterable[tuple[int, float]], target: float, lower_is_better: bool = True
) -> int | None:
    """Smallest NFE of ``(nfe, quality)`` points whose quality reaches ``target``; None if none."""
    hits = [nfe for nfe, q in curve if reaches(q, target, lower_is_better)]
    return min(hits) if hits else None


@dataclass(frozen=True)
class MatchedSpeedup:
    """``value`` is the quality-matched speed-up; a lower bound when ``lower_bound``."""

    value: float
    cold_nfe: int | None
    lower_bound: bool


def quality_matched_speedup(
    cold_curve: Iterable[tuple[int, float]], nfe: int, quality: float, lower_is_better: bool = True
) -> MatchedSpeedup:
    """``nfe_cold(quality) / nfe``: how many times fewer evaluations than the cold flow needs."""
    curve = list(cold_curve)
    if nfe < 1:
        raise ValueError(f"nfe={nfe} must be >= 1.")
    cold = nfe_to_reach(curve, quality, lower_is_better)
    if cold is None:
        return MatchedSpeedup(max(n for n, _ in curve) / nfe, None, True)
    return MatchedSpeedup(cold / nfe, cold, False)
