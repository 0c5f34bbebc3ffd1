import pytest
import torch

from ws_fm.paths import CubicKappa, MaskedPath, WarmStart
from ws_fm.solvers import discrete_euler

V, MASK = 50, 50


def warm(t0, scheduler=None):
    return WarmStart(MaskedPath(MASK, scheduler), t0)


def _pair(n=4000, L=16):
    g = torch.Generator().manual_seed(0)
    x1 = torch.randint(0, V // 2, (n, L), generator=g)
    xd = torch.randint(V // 2, V, (n, L), generator=g)  # never equal to x1
    return xd, x1


def test_t0_zero_is_the_cold_masked_path():
    xd, x1 = _pair()
    path = warm(0.0)
    noise = path.draw_noise(x1, torch.Generator().manual_seed(1))
    assert (path.start(xd, noise) == MASK).all()  # no draft token survives at t0 = 0
    t = torch.full((len(x1),), 0.3)
    x_t = path.sample(xd, x1, t, noise).x_t
    assert set(x_t.unique().tolist()) <= set(range(V // 2)) | {MASK}
    assert abs((x_t == x1).float().mean().item() - 0.3) < 0.01


@pytest.mark.parametrize("t0, t", [(0.5, 0.6), (0.8, 0.9), (0.7, 0.7)])
def test_fractions_of_data_draft_and_mask_match_their_probabilities(t0, t):
    xd, x1 = _pair()
    path = warm(t0)
    ps = path.sample(xd, x1, torch.full((len(x1),), t), path.draw_noise(x1))
    s = (t - t0) / (1 - t0)
    got = [(ps.x_t == ref).float().mean().item() for ref in (x1, xd, MASK)]
    want = [s, (1 - s) * t0, (1 - s) * (1 - t0)]
    # 64,000 Bernoulli positions: the standard error is below 0.002.
    assert got == pytest.approx(want, abs=0.01)
    assert torch.equal(ps.u_t, x1)  # the cross-entropy target is x1 itself


def test_path_rejects_bad_t0_and_mask_id():
    with pytest.raises(ValueError, match="outside"):
        warm(1.0)
    with pytest.raises(ValueError, match="mask_id"):
        MaskedPath(0)


def test_discrete_euler_counts_nfe_and_ends_without_masks():
    calls = []

    def logits(x, t):
        calls.append(float(t[0]))
        return torch.zeros(*x.shape, V)  # uniform over real tokens

    x_start = torch.full((8, 12), MASK)
    res = discrete_euler(logits, x_start, 0.8, 5, torch.Generator().manual_seed(0), True)
    assert res.nfe == 5 == len(calls)
    assert calls == pytest.approx([0.8, 0.84, 0.88, 0.92, 0.96])
    assert not (res.samples == MASK).any() and res.trajectory.shape == (6, 8, 12)


def test_discrete_euler_jump_probability_is_h_over_one_minus_t():
    # A model that always predicts token 0: after one step of h = 0.1 from t = 0.5 a position
    # has jumped (to 0) with probability 0.1 / 0.5 = 0.2.
    def logits(x, t):
        out = torch.full((*x.shape, V), -1e9)
        out[..., 0] = 0
        return out

    x_start = torch.full((2000, 32), 7)
    times_h = discrete_euler(logits, x_start, 0.5, 5, torch.Generator().manual_seed(0), True)
    first = times_h.trajectory[1]
    assert (first == 0).float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert (times_h.samples == 0).all()  # the last step jumps with probability 1


def test_t0_zero_warm_path_equals_the_cold_masked_path():
    xd, x1 = _pair(500)
    noise = torch.rand((2, *x1.shape), generator=torch.Generator().manual_seed(3))
    t = torch.rand(len(x1), generator=torch.Generator().manual_seed(4))
    cold = MaskedPath(MASK).sample(torch.full_like(x1, MASK), x1, t, noise)
    assert torch.equal(warm(0.0).sample(xd, x1, t, noise).x_t, cold.x_t)


@pytest.mark.parametrize("scheduler", [None, CubicKappa()])
def test_perfect_drafts_give_the_cold_masked_marginals_on_t0_1(scheduler):
    # With xd = x1, a position shows x1 at t w.p. kappa_t (draft kept or revealed), as on the
    # cold path; MASK otherwise.
    _, x1 = _pair()
    t0, t = 0.6, 0.8
    cold_path = MaskedPath(MASK, scheduler)
    ps = warm(t0, scheduler).sample(x1, x1, torch.full((len(x1),), t))
    kappa = cold_path.scheduler.kappa(t)
    assert (ps.x_t == x1).float().mean().item() == pytest.approx(kappa, abs=0.01)
    assert ((ps.x_t == x1) | (ps.x_t == MASK)).all()


def test_jump_probability_comes_from_the_path_schedule():
    lin, cub = MaskedPath(MASK), MaskedPath(MASK, CubicKappa())
    assert lin.jump_probability(0.5, 0.6) == pytest.approx(0.1 / 0.5)
    k = CubicKappa().kappa
    assert cub.jump_probability(0.5, 0.6) == pytest.approx((k(0.6) - k(0.5)) / (1 - k(0.5)))
    assert cub.jump_probability(0.9, 1.0) == 1.0

    # The sampler takes the path's probability: one step from t = 0.5 to 0.6.
    def to_zero(x, t):
        out = torch.full((*x.shape, V), -1e9)
        out[..., 0] = 0
        return out

    x = torch.full((3000, 20), 7)
    res = discrete_euler(
        to_zero, x, 0.5, 5, torch.Generator().manual_seed(0), True, cub.jump_probability
    )
    assert (res.trajectory[1] == 0).float().mean().item() == pytest.approx(
        cub.jump_probability(0.5, 0.6), abs=0.01
    )


def test_discrete_euler_counts_a_network_called_twice_per_step_twice():
    net = torch.nn.Linear(1, 1)

    def guided(x, t):  # e.g. classifier-free guidance: two network calls a step
        net(torch.zeros(1, 1))
        net(torch.zeros(1, 1))
        return torch.zeros(*x.shape, V)

    x_start = torch.full((4, 6), MASK)
    res = discrete_euler(guided, x_start, 0.0, 7, network=net)
    assert res.nfe == 14
    assert discrete_euler(guided, x_start, 0.0, 7).nfe == 7  # without a network: calls of the field
