r"""Speed-up accounting of docs/design.md §2, on measured (NFE, quality) points.

- *guaranteed*: ``nfe_cold(h) / nfe_warm(h, t0)`` at equal step size ``h``, both counted; equal
  to ``1 / (1 - t0)`` up to rounding.
- *quality-matched*: ``S = nfe_cold(Q_ws) / nfe_ws``, where ``nfe_cold(Q)`` is the smallest NFE
  on the cold grid whose quality reaches ``Q``.  When no cold point reaches ``Q_ws``, ``S`` is
  only bounded below by ``max(grid) / nfe_ws``; :func:`quality_matched_speedup` says so.
- *wall-clock*: ``T_cold(reference) / (T_draft + T_refine)``.
- *at parity*: quality within 5% of the reference ``Q_ref`` (relative to ``|Q_ref|``, so that
  negative qualities work too); judged on means over sampling seeds where they exist
  (:func:`mean_sem`).

Every report of the project computes these through this module, so that the definitions live in
one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "PARITY_TOLERANCE",
    "guaranteed_speedup",
    "wallclock_speedup",
    "mean_sem",
    "better",
    "reaches",
    "within",
    "nfe_to_reach",
    "quality_matched_speedup",
    "MatchedSpeedup",
]


#: "At parity" means within this relative tolerance of the reference quality.
PARITY_TOLERANCE = 0.05


def guaranteed_speedup(nfe_cold_same_step: int, nfe_warm: int) -> float:
    """``nfe_cold(h) / nfe_warm(h, t0)``: both counted at the same step size ``h``."""
    if nfe_warm < 1:
        raise ValueError(f"nfe_warm={nfe_warm} must be >= 1.")
    return nfe_cold_same_step / nfe_warm


def wallclock_speedup(t_reference: float, t_refine: float, t_draft: float = 0.0) -> float | None:
    """``T_cold(reference) / (T_draft + T_refine)``, each timed on the same device in one run;
    None when the warm time is not positive (nothing was timed)."""
    total = t_draft + t_refine
    return t_reference / total if total > 0 else None


def mean_sem(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, standard error of the mean (``std / sqrt(n)``, ``ddof = 1``; 0 for one value) and
    count of per-seed qualities."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("mean_sem needs at least one value.")
    n = len(xs)
    mean = sum(xs) / n
    if n == 1:
        return mean, 0.0, 1
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    return mean, (var / n) ** 0.5, n


def better(a: float, b: float, lower_is_better: bool = True) -> bool:
    """``a`` is strictly better than ``b``."""
    return a < b if lower_is_better else a > b


def reaches(q: float, target: float, lower_is_better: bool = True) -> bool:
    """Quality ``q`` is at least as good as ``target``."""
    return q <= target if lower_is_better else q >= target


def within(
    q: float, reference: float, tolerance: float = PARITY_TOLERANCE, lower_is_better: bool = True
) -> bool:
    """``q`` is within ``tolerance`` of ``reference`` (relative to ``|reference|``), or better:
    "at parity".  The margin is ``tolerance * |reference|`` in the worse direction, so a
    negative reference (a log-likelihood, say) is handled as a positive one is."""
    margin = tolerance * abs(reference)
    bound = reference + margin if lower_is_better else reference - margin
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
    """``nfe_cold(quality) / nfe``: how many times fewer evaluations than the cold flow needs.

    With an empty cold curve there is nothing to compare with: ``value`` is NaN and
    ``cold_nfe`` None."""
    curve = list(cold_curve)
    if nfe < 1:
        raise ValueError(f"nfe={nfe} must be >= 1.")
    if not curve:
        return MatchedSpeedup(float("nan"), None, False)
    cold = nfe_to_reach(curve, quality, lower_is_better)
    if cold is None:
        return MatchedSpeedup(max(n for n, _ in curve) / nfe, None, True)
    return MatchedSpeedup(cold / nfe, cold, False)
