"""Argument checks shared by the package: each raises a ``ValueError`` that names the parameter,
the value it got and what is allowed, so that bad input fails before any training starts."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["check_t0", "check_sigma", "check_positive_int", "check_choice"]


def check_t0(t0: float, name: str = "t0") -> float:
    """``t0`` is the warm start's starting time; it must lie in ``[0, 1)``."""
    t0 = float(t0)
    if not 0.0 <= t0 < 1.0:
        raise ValueError(
            f"{name}={t0!r} is outside [0, 1): the warm start begins at t0 in [0, 1) "
            "(t0=0 is a cold start from noise; t0=1 would leave no time to refine)."
        )
    return t0


def check_sigma(sigma: float, name: str = "sigma") -> float:
    """``sigma`` scales the noise added to drafts; it must be non-negative."""
    sigma = float(sigma)
    if not sigma >= 0.0:  # also rejects NaN
        raise ValueError(f"{name}={sigma!r} must be >= 0 (it scales the noise added to drafts).")
    return sigma


def check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name}={value!r} must be an integer >= 1.")
    return int(value)


def check_choice(value: str, choices: Iterable[str], name: str) -> str:
    choices = sorted(choices)
    if value not in choices:
        raise ValueError(
            f"unknown {name}={value!r}; choose one of {', '.join(map(repr, choices))}."
        )
    return value
