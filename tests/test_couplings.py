import itertools

import pytest
import torch

from ws_fm.couplings import COUPLINGS, NearestNeighbourCoupling, get_coupling, optimal_assignment


def _cost(a, b):
    return ((a - b) ** 2).sum().item()


@pytest.mark.parametrize("seed", range(5))
def test_minibatch_ot_is_optimal_against_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    src, tgt = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g) * 2
    best = min(_cost(src, tgt[list(p)]) for p in itertools.permutations(range(6)))
    s, t = get_coupling("minibatch_ot")(src, tgt)
    assert torch.equal(s, src)
    assert _cost(s, t) == pytest.approx(best, rel=1e-6)
    # The result is a permutation of the data, not a resampling.
    assert sorted(optimal_assignment(src, tgt).tolist()) == list(range(6))


def test_minibatch_ot_on_images_flattens():
    src, tgt = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    perm = optimal_assignment(src, tgt)
    best = min(_cost(src, tgt[list(p)]) for p in itertools.permutations(range(6)))
    assert _cost(src, tgt[perm]) == pytest.approx(best, rel=1e-6)


def test_minibatch_ot_recovers_a_shuffled_identity():
    x = torch.randn(32, 2) * 10
    perm = torch.randperm(32)
    _, t = get_coupling("minibatch_ot")(x, x[perm])
    assert torch.equal(t, x)


def test_independent_keeps_pairs():
    a, b = torch.randn(8, 2), torch.randn(8, 2)
    s, t = get_coupling("independent")(a, b)
    assert torch.equal(s, a) and torch.equal(t, b)


def test_nearest_neighbour_pairs_each_source_with_its_closest_reference():
    ref = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    src = torch.tensor([[9.0, 1.0], [1.0, 1.0], [0.5, 8.0], [11.0, -1.0]])
    c = NearestNeighbourCoupling()
    with pytest.raises(RuntimeError, match="set_reference"):
        c(src, torch.zeros(4, 2))
    c.set_reference(ref)
    s, t = c(src, torch.zeros(4, 2))
    assert torch.equal(t, ref[[1, 0, 2, 1]])
    assert torch.equal(s, src)


def test_unknown_coupling_name_raises():
    with pytest.raises(ValueError, match="unknown coupling='ot'.*'minibatch_ot'"):
        get_coupling("ot")
    assert set(COUPLINGS) == {"independent", "minibatch_ot", "nearest_neighbour"}


def test_unequal_batches_raise():
    with pytest.raises(ValueError, match="equal batch sizes"):
        optimal_assignment(torch.randn(4, 2), torch.randn(5, 2))
