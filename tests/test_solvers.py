import math

import pytest
import torch

from ws_fm.solvers import num_steps, solve

# Evaluations a step, written out here independently of the solver module's table.
EVALS_PER_STEP = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}


def _const(v):
    return lambda x, t: torch.full_like(x, v)


@pytest.mark.parametrize("method", list(EVALS_PER_STEP))
@pytest.mark.parametrize("t0", [0.0, 0.4])
def test_exact_on_constant_velocity(method, t0):
    x0 = torch.randn(5, 2, dtype=torch.float64)
    res = solve(_const(1.5), x0, t_start=t0, method=method, steps=3)
    torch.testing.assert_close(res.samples, x0 + 1.5 * (1 - t0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["midpoint", "heun", "rk4"])
def test_second_order_methods_exact_when_velocity_is_linear_in_t(method):
    # dx/dt = 2t + 1 (independent of x): x(1) = x(t0) + (1 - t0^2) + (1 - t0).
    x0 = torch.zeros(3, 1, dtype=torch.float64)
    res = solve(
        lambda x, t: (2 * t + 1).reshape(-1, 1).expand_as(x),
        x0,
        t_start=0.2,
        method=method,
        steps=2,
    )
    torch.testing.assert_close(res.samples, x0 + (1 - 0.04) + 0.8, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method,order", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_convergence_order_on_linear_ode(method, order):
    # dx/dt = -2x, x(1) = x(0) exp(-2): halving h divides the error by about 2^order.
    x0 = torch.ones(1, 1, dtype=torch.float64)
    exact = math.exp(-2.0)
    errs = [
        abs(solve(lambda x, t: -2 * x, x0, method=method, steps=n).samples.item() - exact)
        for n in (16, 32)
    ]
    assert errs[0] / errs[1] == pytest.approx(2**order, rel=0.15)


def test_dopri5_within_tolerance_on_nonlinear_ode():
    # Logistic growth dx/dt = x(1 - x): x(1) = 1 / (1 + (1/x0 - 1) e^{-1}).
    x0 = torch.tensor([[0.1], [0.5], [2.0]], dtype=torch.float64)
    res = solve(lambda x, t: x * (1 - x), x0, method="dopri5", rtol=1e-8, atol=1e-8)
    exact = 1 / (1 + (1 / x0 - 1) * math.exp(-1))
    torch.testing.assert_close(res.samples, exact, rtol=0, atol=1e-7)
    assert 6 <= res.nfe < 200  # counted, adaptive: more than one step's worth


@pytest.mark.parametrize("method", list(EVALS_PER_STEP))
@pytest.mark.parametrize("t0", [0.0, 0.5, 0.8, 0.9, 0.95])
@pytest.mark.parametrize("h", [0.1, 0.05, 0.3, 0.01])
def test_counted_nfe_is_k_times_ceil_of_interval_over_h(method, t0, h):
    expected = EVALS_PER_STEP[method] * math.ceil(round((1 - t0) / h, 9))
    res = solve(_const(0.0), torch.zeros(2, 2), t_start=t0, method=method, step_size=h)
    assert res.nfe == expected


def test_num_steps_is_robust_to_rounding():
    assert num_steps(0.8, 0.1) == 2
    assert num_steps(0.7, 0.1) == 3
    assert num_steps(0.0, 0.3) == 4


def test_trajectory_holds_every_step():
    x0 = torch.zeros(4, 2)
    res = solve(_const(1.0), x0, t_start=0.5, method="euler", steps=5, return_trajectory=True)
    assert res.trajectory.shape == (6, 4, 2)
    torch.testing.assert_close(res.trajectory[0], x0)
    torch.testing.assert_close(res.times, torch.linspace(0.5, 1.0, 6))
    ad = solve(_const(1.0), x0, method="dopri5", return_trajectory=True, trajectory_points=5)
    assert ad.trajectory.shape == (5, 4, 2)


def test_bad_solver_arguments_raise():
    x0 = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="unknown solver='rk45'.*'dopri5'"):
        solve(_const(0), x0, method="rk45", steps=2)
    with pytest.raises(ValueError, match="steps=0 must be an integer >= 1"):
        solve(_const(0), x0, steps=0)
    with pytest.raises(ValueError, match="exactly one of steps or step_size"):
        solve(_const(0), x0, steps=2, step_size=0.1)
    with pytest.raises(ValueError, match="step_size=-0.1 must be > 0"):
        solve(_const(0), x0, step_size=-0.1)
    with pytest.raises(ValueError, match=r"t_start=1.0 is outside \[0, 1\)"):
        solve(_const(0), x0, t_start=1.0, steps=1)


@pytest.mark.parametrize("method", list(EVALS_PER_STEP))
def test_a_network_called_twice_per_evaluation_counts_twice(method):
    """NFE counts network calls, through a hook on the network: a guided field that calls its
    network twice per evaluation costs twice the NFE."""
    net = torch.nn.Linear(2, 2)

    def guided(x, t):
        return 0.5 * (net(x) + net(x))  # e.g. conditional + unconditional

    x = torch.zeros(3, 2)
    res = solve(guided, x, 0.0, method, steps=5, network=net)
    assert res.nfe == 2 * 5 * EVALS_PER_STEP[method]
    assert solve(guided, x, 0.0, method, steps=5).nfe == 5 * EVALS_PER_STEP[method]


def test_refiner_nfe_counts_its_backbone_calls():
    from ws_fm.nets import MLP
    from ws_fm.refiners import FlowMatching

    class Guided(FlowMatching):
        def forward(self, x, t, **cond):
            return 2 * self.net(x, t) - self.net(x, t)

    model = Guided(MLP(hidden=8), sample_shape=(2,))
    assert model.sample(4, steps=3).nfe == 6
    assert FlowMatching(MLP(hidden=8), sample_shape=(2,)).sample(4, steps=3).nfe == 3
