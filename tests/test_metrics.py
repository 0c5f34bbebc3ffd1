import numpy as np
import ot
import pytest
import torch

from ws_fm.data import TOY_DATASETS, make_toy
from ws_fm.metrics import sliced_wasserstein


def test_sliced_wasserstein_agrees_with_pot():
    a, b = torch.randn(700, 2), torch.randn(700, 2) * 1.3 + 0.2
    ref = ot.sliced_wasserstein_distance(
        a.double().numpy(), b.double().numpy(), n_projections=100, seed=3
    )
    assert sliced_wasserstein(a, b, n_projections=100, seed=3) == pytest.approx(
        float(ref), rel=1e-9
    )
    # Unequal sizes go through POT itself.
    ref2 = ot.sliced_wasserstein_distance(
        a[:500].double().numpy(), b.double().numpy(), n_projections=100, seed=3
    )
    assert sliced_wasserstein(a[:500], b, n_projections=100, seed=3) == pytest.approx(
        float(ref2), rel=1e-9
    )


def test_sliced_wasserstein_of_a_shift_is_the_projected_shift():
    # Shifting by v moves each projection by <theta, v>: SW^2 = E[<theta, v>^2] = |v|^2 / d.
    a = torch.randn(4000, 2)
    v = torch.tensor([3.0, 0.0])
    assert sliced_wasserstein(a, a + v, n_projections=2000) == pytest.approx(
        3.0 / np.sqrt(2), rel=0.05
    )
    assert sliced_wasserstein(a, a) == 0.0


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_real_vs_real_is_far_below_real_vs_noise(name):
    a, b = make_toy(name, 3000, seed=1), make_toy(name, 3000, seed=2)
    noise = torch.randn(3000, 2) * a.std(0)
    assert sliced_wasserstein(a, b) < 0.3 * sliced_wasserstein(a, noise)


def test_dimension_mismatch_raises():
    with pytest.raises(ValueError, match="dimension 3 differs from reference 2"):
        sliced_wasserstein(torch.randn(5, 3), torch.randn(5, 2))
