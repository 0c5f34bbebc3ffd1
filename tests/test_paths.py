import math

import pytest
import torch

from ws_fm.paths import (
    AffinePath,
    ColdStartPath,
    CondOTScheduler,
    CosineScheduler,
    WarmStart,
    WarmStartPath,
)

B, D = 64, 3


def _batch(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return [
        torch.randn(B, D, generator=g, dtype=dtype) * s + m for s, m in ((1, 0), (2, 3), (0.5, -1))
    ]


def test_t0_zero_is_exactly_the_cold_path():
    eps, x1, xd = _batch()
    t = torch.rand(B, dtype=torch.float64)
    cold = ColdStartPath().sample(eps, x1, t)
    warm = WarmStartPath(t0=0.0, sigma=1.0).sample(xd, x1, t, eps)
    torch.testing.assert_close(warm.x_t, cold.x_t, rtol=0, atol=1e-14)
    torch.testing.assert_close(warm.u_t, cold.u_t, rtol=0, atol=1e-14)
    torch.testing.assert_close(WarmStartPath(0.0).start(xd, eps), ColdStartPath().start(eps))


@pytest.mark.parametrize("t0", [0.3, 0.5, 0.8, 0.95])
def test_perfect_drafts_give_the_cold_path_restricted_to_t0_1(t0):
    eps, x1, _ = _batch()
    t = t0 + (1 - t0) * torch.rand(B, dtype=torch.float64)
    cold = ColdStartPath().sample(eps, x1, t)
    warm = WarmStartPath(t0=t0, sigma=1.0).sample(x1, x1, t, eps)
    torch.testing.assert_close(warm.x_t, cold.x_t, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(warm.u_t, cold.u_t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "path", [ColdStartPath(), WarmStartPath(0.6, 1.0), WarmStartPath(0.8, 0.3)]
)
def test_target_velocity_is_the_time_derivative(path):
    eps, x1, xd = _batch()
    source = eps if isinstance(path, ColdStartPath) else xd
    t0 = path.t_start
    t = t0 + (1 - t0) * (0.05 + 0.9 * torch.rand(B, dtype=torch.float64))
    h = 1e-6
    fwd = path.sample(source, x1, t + h, eps).x_t
    bwd = path.sample(source, x1, t - h, eps).x_t
    torch.testing.assert_close(
        (fwd - bwd) / (2 * h), path.sample(source, x1, t, eps).u_t, rtol=1e-6, atol=1e-6
    )


def test_warm_path_starts_at_the_noisy_draft_and_ends_at_data():
    eps, x1, xd = _batch()
    path = WarmStartPath(0.7, 0.5)
    start = path.sample(xd, x1, torch.full((B,), 0.7, dtype=torch.float64), eps).x_t
    torch.testing.assert_close(start, 0.7 * xd + 0.5 * 0.3 * eps)
    torch.testing.assert_close(path.start(xd, eps), start)
    end = path.sample(xd, x1, torch.ones(B, dtype=torch.float64), eps).x_t
    torch.testing.assert_close(end, x1)


def test_images_broadcast_time_per_sample():
    x1 = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    eps, xd = torch.randn_like(x1), torch.randn_like(x1)
    t = torch.tensor([0.8, 0.85, 0.9, 1.0], dtype=torch.float64)
    ps = WarmStartPath(0.8).sample(xd, x1, t, eps)
    torch.testing.assert_close(ps.x_t[-1], x1[-1])
    torch.testing.assert_close(ps.x_t[0], 0.8 * xd[0] + 0.2 * eps[0])


@pytest.mark.parametrize("t0", [1.0, -0.1, 1.5, math.nan])
def test_bad_t0_raises_naming_the_parameter(t0):
    with pytest.raises(ValueError, match=r"t0=.*\[0, 1\)"):
        WarmStartPath(t0=t0)


@pytest.mark.parametrize("sigma", [-0.5, math.nan])
def test_negative_sigma_raises(sigma):
    with pytest.raises(ValueError, match="sigma=.*>= 0"):
        WarmStartPath(0.5, sigma=sigma)


def test_draft_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"draft shape \(4, 3\) differs from data shape \(4, 2\)"):
        WarmStartPath(0.5).sample(
            torch.randn(4, 3), torch.randn(4, 2), torch.rand(4), torch.randn(4, 3)
        )


SCHEDULERS = [CondOTScheduler(), CosineScheduler()]


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=repr)
def test_scheduled_warm_path_at_t0_zero_is_the_cold_path(scheduler):
    eps, x1, xd = _batch()
    t = torch.rand(B, dtype=torch.float64)
    cold_path = AffinePath(scheduler)
    cold = cold_path.sample(eps, x1, t)
    warm = WarmStart(cold_path, t0=0.0).sample(xd, x1, t, eps)
    torch.testing.assert_close(warm.x_t, cold.x_t, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(warm.u_t, cold.u_t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=repr)
@pytest.mark.parametrize("t0", [0.3, 0.8])
def test_scheduled_perfect_drafts_give_the_cold_path_on_t0_1(scheduler, t0):
    eps, x1, _ = _batch()
    t = t0 + (1 - t0) * torch.rand(B, dtype=torch.float64)
    cold_path = AffinePath(scheduler)
    tt = t[:, None]
    # The cold path's marginal point and velocity written out from the schedule.
    want_x = scheduler.sigma(tt) * eps + scheduler.alpha(tt) * x1
    want_u = scheduler.d_sigma(tt) * eps + scheduler.d_alpha(tt) * x1
    cold = cold_path.sample(eps, x1, t)
    torch.testing.assert_close(cold.x_t, want_x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(cold.u_t, want_u, rtol=1e-10, atol=1e-10)
    warm = WarmStart(cold_path, t0=t0, sigma=1.0).sample(x1, x1, t, eps)
    torch.testing.assert_close(warm.x_t, want_x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(warm.u_t, want_u, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=repr)
@pytest.mark.parametrize("t0, sigma", [(0.0, 1.0), (0.6, 1.0), (0.8, 0.3)])
def test_scheduled_target_velocity_is_the_time_derivative(scheduler, t0, sigma):
    eps, x1, xd = _batch()
    path = WarmStart(AffinePath(scheduler), t0, sigma)
    t = t0 + (1 - t0) * (0.05 + 0.9 * torch.rand(B, dtype=torch.float64))
    h = 1e-6
    fwd = path.sample(xd, x1, t + h, eps).x_t
    bwd = path.sample(xd, x1, t - h, eps).x_t
    torch.testing.assert_close(
        (fwd - bwd) / (2 * h), path.sample(xd, x1, t, eps).u_t, rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=repr)
def test_scheduled_warm_path_starts_at_the_placed_draft_and_ends_at_data(scheduler):
    eps, x1, xd = _batch()
    path = WarmStart(AffinePath(scheduler), 0.7, 0.5)
    want = scheduler.alpha(0.7) * xd + 0.5 * scheduler.sigma(0.7) * eps
    start = path.sample(xd, x1, torch.full((B,), 0.7, dtype=torch.float64), eps).x_t
    torch.testing.assert_close(start, want)
    torch.testing.assert_close(path.start(xd, eps), want)
    end = path.sample(xd, x1, torch.ones(B, dtype=torch.float64), eps).x_t
    torch.testing.assert_close(end, x1)


def test_a_path_starts_from_a_given_state():
    eps, x1, xd = _batch()
    path = WarmStart(AffinePath(CosineScheduler()), 0.5)
    x_start = path.start(xd, eps)
    t = torch.full((B,), 0.75, dtype=torch.float64)
    torch.testing.assert_close(
        path.sample_from(x_start, x1, t).x_t, path.sample(xd, x1, t, eps).x_t
    )


def test_warm_start_of_a_warm_start_is_refused():
    with pytest.raises(ValueError, match="already a WarmStart"):
        WarmStart(WarmStartPath(0.5), 0.8)
