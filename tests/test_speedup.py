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
