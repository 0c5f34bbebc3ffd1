import pytest

from ws_fm.speedup import nfe_to_reach, quality_matched_speedup, within

CURVE = [(1, 1.0), (2, 0.5), (4, 0.2), (8, 0.1), (16, 0.09), (128, 0.08)]


def test_nfe_to_reach_takes_the_smallest_grid_point():
    assert nfe_to_reach(CURVE, 0.2) == 4
    assert nfe_to_reach(CURVE, 0.15) == 8
    assert nfe_to_reach(CURVE, 0.01) is None
    assert nfe_to_reach([(1, 0.1), (2, 0.5)], 0.3, lower_is_better=False) == 2


def test_quality_matched_speedup_and_lower_bound():
    m = quality_matched_speedup(CURVE, nfe=2, quality=0.1)
    assert (m.value, m.cold_nfe, m.lower_bound) == (4.0, 8, False)
    lb = quality_matched_speedup(CURVE, nfe=4, quality=0.05)
    assert lb.lower_bound and lb.value == 32.0
    with pytest.raises(ValueError):
        quality_matched_speedup(CURVE, nfe=0, quality=0.1)


def test_parity_is_within_five_percent():
    assert within(1.049, 1.0) and not within(1.051, 1.0)
    assert within(0.5, 1.0)  # better than the reference is at parity
    assert within(0.951, 1.0, lower_is_better=False) and not within(
        0.94, 1.0, lower_is_better=False
    )


def test_parity_with_negative_higher_is_better_metrics():
    # A log-likelihood of -100: 5% worse is -105, not -95.
    assert within(-104.0, -100.0, lower_is_better=False)
    assert not within(-106.0, -100.0, lower_is_better=False)
    assert within(-96.0, -100.0, lower_is_better=True) and not within(-94.0, -100.0)


def test_quality_matched_speedup_on_an_empty_curve_is_undefined_not_an_error():
    import math

    m = quality_matched_speedup([], nfe=2, quality=0.1)
    assert math.isnan(m.value) and m.cold_nfe is None


def test_mean_sem_and_the_speedup_definitions():
    from ws_fm.speedup import guaranteed_speedup, mean_sem, wallclock_speedup

    mean, sem, n = mean_sem([1.0, 2.0, 3.0, 4.0])
    assert (mean, n) == (2.5, 4) and sem == pytest.approx((5 / 3) ** 0.5 / 2)
    assert mean_sem([7.0]) == (7.0, 0.0, 1)
    assert guaranteed_speedup(10, 2) == 5.0
    assert wallclock_speedup(10.0, 1.5, 0.5) == 5.0 and wallclock_speedup(1.0, 0.0) is None
