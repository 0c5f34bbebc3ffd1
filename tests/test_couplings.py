import itertools

import pytest
import torch

from ws_fm.couplings import (
    COUPLINGS,
    OT_SOLVERS,
    Coupling,
    MinibatchOTCoupling,
    NearestNeighbourCoupling,
    TeacherForcedCoupling,
    get_coupling,
    optimal_assignment,
    resolve_coupling,
)


def _cost(a, b):
    return ((a - b) ** 2).sum().item()


@pytest.mark.parametrize("solver", OT_SOLVERS)
@pytest.mark.parametrize("seed", range(5))
def test_minibatch_ot_is_optimal_against_brute_force(seed, solver):
    g = torch.Generator().manual_seed(seed)
    src, tgt = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g) * 2
    best = min(_cost(src, tgt[list(p)]) for p in itertools.permutations(range(6)))
    s, t, cond = MinibatchOTCoupling(solver)(src, tgt)
    assert torch.equal(s, src) and cond is None
    assert _cost(s, t) == pytest.approx(best, rel=1e-6)
    # The result is a permutation of the data, not a resampling.
    assert sorted(optimal_assignment(src, tgt, solver).tolist()) == list(range(6))


def test_ot_solvers_agree_on_larger_batches():
    g = torch.Generator().manual_seed(0)
    src, tgt = torch.randn(128, 64, generator=g), torch.randn(128, 64, generator=g)
    a, b = (optimal_assignment(src, tgt, s) for s in OT_SOLVERS)
    assert _cost(src, tgt[a]) == pytest.approx(_cost(src, tgt[b]), rel=1e-9)


def test_minibatch_ot_on_images_flattens():
    src, tgt = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    perm = optimal_assignment(src, tgt)
    best = min(_cost(src, tgt[list(p)]) for p in itertools.permutations(range(6)))
    assert _cost(src, tgt[perm]) == pytest.approx(best, rel=1e-6)


def test_minibatch_ot_recovers_a_shuffled_identity():
    x = torch.randn(32, 2) * 10
    perm = torch.randperm(32)
    _, t, _ = get_coupling("minibatch_ot")(x, x[perm])
    assert torch.equal(t, x)


def test_minibatch_ot_carries_the_conditioning_with_the_data():
    x = torch.randn(16, 2) * 10
    perm = torch.randperm(16)
    labels = torch.arange(16)
    _, t, cond = get_coupling("minibatch_ot")(x, x[perm], {"y": labels[perm]})
    assert torch.equal(t, x) and torch.equal(cond["y"], labels)


def test_minibatch_ot_refuses_non_finite_input_clearly():
    src = torch.randn(4, 2)
    src[1, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite.*corrupt draft bank"):
        optimal_assignment(src, torch.randn(4, 2))


def test_independent_keeps_pairs():
    a, b = torch.randn(8, 2), torch.randn(8, 2)
    s, t, _ = get_coupling("independent")(a, b)
    assert torch.equal(s, a) and torch.equal(t, b)


def test_nearest_neighbour_pairs_each_source_with_its_closest_reference():
    ref = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    src = torch.tensor([[9.0, 1.0], [1.0, 1.0], [0.5, 8.0], [11.0, -1.0]])
    c = NearestNeighbourCoupling()
    with pytest.raises(RuntimeError, match="prepare"):
        c(src, torch.zeros(4, 2))
    c.prepare(ref)
    s, t, _ = c(src, torch.zeros(4, 2))
    assert torch.equal(t, ref[[1, 0, 2, 1]])
    assert torch.equal(s, src)


def test_nearest_neighbour_moves_the_training_data_once_not_every_call(monkeypatch):
    c = NearestNeighbourCoupling()
    ref = torch.randn(50, 2)
    c.prepare(ref)
    moves = []
    real_to = torch.Tensor.to

    def counting_to(self, *a, **k):
        out = real_to(self, *a, **k)
        if self is ref and out is not self:
            moves.append(1)  # a real copy of the training data
        return out

    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    for _ in range(5):  # batches in float64: the data must be converted, once
        c(torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64))
    assert len(moves) == 1


def test_couplings_know_whether_their_pairs_live_in_the_bank():
    assert not get_coupling("independent").pairs_in_bank
    assert not get_coupling("minibatch_ot").pairs_in_bank
    assert get_coupling("nearest_neighbour").pairs_in_bank
    assert get_coupling("teacher_forced").pairs_in_bank
    with pytest.raises(ValueError, match="precomputed in the sample bank"):
        TeacherForcedCoupling()(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3))


def test_resolve_takes_names_or_instances_and_checks_tokens():
    c = MinibatchOTCoupling("pot")
    assert resolve_coupling(c) is c
    assert isinstance(resolve_coupling("minibatch_ot", tokens=True), MinibatchOTCoupling)
    with pytest.raises(ValueError, match="does not apply to token.*'teacher_forced'"):
        resolve_coupling("nearest_neighbour", tokens=True)
    with pytest.raises(ValueError, match="neither a name"):
        resolve_coupling(42)


def test_custom_coupling_subclass():
    class Reversed(Coupling):
        name = "reversed"

        def __call__(self, source, x1, cond=None):
            return source, x1.flip(0), cond

    _, t, _ = resolve_coupling(Reversed())(torch.zeros(3, 1), torch.arange(3.0)[:, None])
    assert t.flatten().tolist() == [2.0, 1.0, 0.0]


def test_unknown_coupling_name_raises():
    with pytest.raises(ValueError, match="unknown coupling='ot'.*'minibatch_ot'"):
        get_coupling("ot")
    assert set(COUPLINGS) == {
        "independent",
        "minibatch_ot",
        "nearest_neighbour",
        "teacher_forced",
        "teacher_pairs",
    }
    with pytest.raises(ValueError, match="unknown solver='lapjv'"):
        MinibatchOTCoupling("lapjv")


def test_unequal_batches_raise():
    with pytest.raises(ValueError, match="equal batch sizes"):
        optimal_assignment(torch.randn(4, 2), torch.randn(5, 2))


def test_auto_solver_times_both_then_keeps_one_and_stays_exact():
    c = MinibatchOTCoupling("auto", auto_trials=2)
    g = torch.Generator().manual_seed(0)
    for i in range(6):
        src, tgt = torch.randn(40, 3, generator=g), torch.randn(40, 3, generator=g)
        _, t, _ = c(src, tgt)
        best = optimal_assignment(src, tgt, "scipy")
        assert _cost(src, t) == pytest.approx(_cost(src, tgt[best]), rel=1e-9)
        assert (c.chosen is None) == (i < 3)  # 2 trials per solver, then a choice
    assert c.chosen in OT_SOLVERS
    tokens = MinibatchOTCoupling()
    tokens(torch.randint(0, 5, (8, 4)), torch.randint(0, 5, (8, 4)))
    assert tokens.chosen == "scipy"  # integer costs have ties: one fixed solver, reproducible
