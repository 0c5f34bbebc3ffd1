"""T0ConditionedFlowMatching: one warm refiner trained across a range of t0, the start time
chosen after training."""

import lightning as L
import pytest
import torch
from helpers import quick_trainer

from ws_fm.calibration import DEFAULT_T0_GRID, calibrate_refined_t0, calibrate_t0
from ws_fm.checkpoints import load
from ws_fm.data import ToyDataModule, make_toy
from ws_fm.drafts import GaussianMixtureDraft
from ws_fm.metrics import sliced_wasserstein
from ws_fm.nets import MLP, UNet
from ws_fm.refiners import T0ConditionedFlowMatching, WarmStartFlowMatching
from ws_fm.solvers import solve


def _net(hidden=64):
    return MLP(dim=2, hidden=hidden, depth=2, start_conditioned=True)


def _adam(params):
    return torch.optim.Adam(params, lr=2e-3)


class ConstantDraft(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def sample(self, n):
        return self.value.expand(n, -1).clone()


def test_training_draws_start_each_pair_at_its_own_t0_inside_the_range():
    a, b = torch.tensor([[2.0, -1.0]]), torch.tensor([[-3.0, 0.5]])
    model = T0ConditionedFlowMatching(
        _net(), ConstantDraft(b), t0_range=(0.2, 0.7), t0=0.5, sigma=0.0, coupling="independent"
    )
    ps, cond = model.training_draw(a.expand(512, -1).clone())
    t0, t = cond["t0"], ps.t
    assert t0.shape == t.shape == (512,)
    assert 0.2 <= t0.min() < 0.3 and 0.6 < t0.max() <= 0.7  # the range is covered
    assert (t >= t0).all() and (t <= 1).all()
    # the straight line from x_t0 = t0 * xd (sigma = 0) to x1: its two ends are read back
    rt, r0 = (t - t0)[:, None], t0[:, None]
    torch.testing.assert_close(ps.x_t + (1 - t[:, None]) * ps.u_t, a.expand(512, -1))
    torch.testing.assert_close((ps.x_t - rt * ps.u_t) / r0, b.expand(512, -1))


def test_bad_arguments_are_refused():
    draft = GaussianMixtureDraft(dim=2)
    with pytest.raises(ValueError, match="start_conditioned=True"):
        T0ConditionedFlowMatching(MLP(dim=2), draft)
    with pytest.raises(ValueError, match="outside t0_range"):
        T0ConditionedFlowMatching(_net(), draft, t0_range=(0.5, 0.9), t0=0.3)
    with pytest.raises(ValueError, match="t0_min must not exceed"):
        T0ConditionedFlowMatching(_net(), draft, t0_range=(0.9, 0.5))
    with pytest.raises(ValueError, match="outside \\[0, 1\\)"):
        T0ConditionedFlowMatching(_net(), draft, t0_range=(0.5, 1.0))
    model = T0ConditionedFlowMatching(_net(), draft, t0_range=(0.5, 0.9), t0=0.6)
    with pytest.raises(ValueError, match="outside t0_range"):
        model.set_t0(0.95)
    x, t = torch.zeros(3, 2), torch.zeros(3)
    with pytest.raises(ValueError, match="needs the start time t0"):
        _net()(x, t)
    with pytest.raises(ValueError, match="without start_conditioned"):
        MLP(dim=2)(x, t, t0=t)
    img = torch.zeros(3, 1, 8, 8)
    with pytest.raises(ValueError, match="needs the start time t0"):
        UNet(start_conditioned=True)(img, t)
    out = UNet(start_conditioned=True)(img, t, t0=t + 0.5)
    assert out.shape == img.shape


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    L.seed_everything(0, verbose=False)
    model = T0ConditionedFlowMatching(
        _net(128),
        GaussianMixtureDraft(dim=2, n_components=1),
        t0_range=(0.5, 0.9),
        t0=0.6,
        optimizer=_adam,
    )
    dm = ToyDataModule("moons", n_train=4000, batch_size=256)
    trainer = quick_trainer(tmp_path_factory.mktemp("t0c"), 1500, max_epochs=None)
    trainer.fit(model, dm)
    return model.eval(), trainer


def test_one_training_run_serves_every_t0_in_its_range(trained, tmp_path):
    """Sampled at each t0 of its range at the cost of a refiner trained at that t0, well below
    the draft's distance to the data; at the range's low end (the longest way from the drafts)
    as good as a refiner trained at that t0 alone, on the same budget of steps."""
    model, _ = trained
    real = make_toy("moons", 2000, seed=7)
    draft_sw = sliced_wasserstein(model.draft.sample(2000), real, seed=0)
    sw = {}
    for t0, nfe in ((0.5, 5), (0.7, 3), (0.9, 1)):
        model.set_t0(t0)
        out = model.sample(2000, step_size=0.1, seed=1)
        assert out.nfe == nfe  # ceil((1 - t0) / h): the cost of a refiner trained at t0
        sw[t0] = sliced_wasserstein(out.samples, real, seed=0)
        assert sw[t0] < 0.6 * draft_sw, (t0, sw[t0], draft_sw)  # measured: 0.43 x or less
    L.seed_everything(0, verbose=False)
    fixed = WarmStartFlowMatching(
        MLP(dim=2, hidden=128, depth=2),
        GaussianMixtureDraft(dim=2, n_components=1),
        t0=0.5,
        optimizer=_adam,
    )
    dm = ToyDataModule("moons", n_train=4000, batch_size=256)
    quick_trainer(tmp_path, 1500, max_epochs=None).fit(fixed, dm)
    fixed_sw = sliced_wasserstein(
        fixed.eval().sample(2000, step_size=0.1, seed=1).samples, real, seed=0
    )
    assert sw[0.5] < 1.2 * fixed_sw, (sw[0.5], fixed_sw)  # measured: 0.98 x


def test_the_start_time_is_an_input_the_refiner_uses(trained):
    """At t0 = 0.5 the drafts have far to travel; told t0 = 0.9 the network takes them for
    nearly finished samples, and ends far worse than with the true start time."""
    model, _ = trained
    real = make_toy("moons", 2000, seed=7)
    model.set_t0(0.5)
    torch.manual_seed(1)
    x_start = model.path.start(model.draft.sample(2000))

    def told(t0):
        def field(x, t):
            return model(x, t, t0=torch.full((x.shape[0],), t0))

        return solve(field, x_start, t_start=0.5, method="euler", steps=5).samples

    sw_right = sliced_wasserstein(told(0.5), real, seed=0)
    sw_lied = sliced_wasserstein(told(0.9), real, seed=0)
    assert sw_right < 0.5 * sw_lied, (sw_right, sw_lied)  # measured: 0.29 x


def test_t0_chosen_after_training_is_saved_and_calibration_stays_in_range(trained, tmp_path):
    model, trainer = trained
    cal = model.calibrate_start(make_toy("moons", 4000, seed=3))
    assert set(cal.grid) == {t for t in DEFAULT_T0_GRID if 0.5 <= t <= 0.9}
    assert model.t0 == cal.t0 and model.hparams["t0"] == cal.t0
    model.set_t0(0.7)
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    back = load(ckpt)
    assert isinstance(back, T0ConditionedFlowMatching)
    assert back.t0 == 0.7 and back.t0_range == (0.5, 0.9)


def test_calibrated_after_training_on_its_refined_samples(trained):
    """The latest t0 at parity with the best start on the grid; it sees what the refiner
    repairs, so the one-Gaussian draft that fails the training-free criterion at every t0 of
    the range still gets a later start than the range's low end."""
    model, _ = trained
    data = make_toy("moons", 4000, seed=3)
    cal = calibrate_refined_t0(model, data, n=2000, step_size=0.1)
    assert cal.grid == (0.5, 0.6, 0.7, 0.8, 0.9) and model.t0 == cal.t0
    best = min(cal.distance)
    assert cal.floor == (best,) * 5 and "refined vs data" in "\n".join(cal.lines())
    i = cal.grid.index(cal.t0)
    assert cal.distance[i] <= 1.1 * best
    assert all(d > 1.1 * best for d in cal.distance[i + 1 :])  # the latest that passes
    free = calibrate_t0(model.draft, data, grid=cal.grid, n=2000)
    assert not free.passed and free.t0 == 0.5  # a Gaussian is told apart from moons
    assert cal.t0 > free.t0
    loose = calibrate_refined_t0(model, data, n=500, step_size=0.1, tolerance=100)
    strict = calibrate_refined_t0(model, data, n=500, step_size=0.1, tolerance=0)
    assert loose.t0 == 0.9 and strict.distance[strict.grid.index(strict.t0)] == min(strict.distance)
    with pytest.raises(TypeError, match="set_t0"):
        calibrate_refined_t0(WarmStartFlowMatching(MLP(dim=2), model.draft), data)


def test_a_fixed_t0_refiner_is_unchanged_by_the_per_pair_paths():
    """WarmStartFlowMatching still draws one t0 for all pairs (the refactored training draw)."""
    model = WarmStartFlowMatching(MLP(dim=2), GaussianMixtureDraft(dim=2), t0=0.7)
    model.ensure_draft_fitted = lambda: None
    model.draft.fit(make_toy("moons", 500, seed=0))
    ps, _ = model.training_draw(make_toy("moons", 256, seed=1))
    assert (ps.t >= 0.7).all()


def test_the_toy_config_fits_and_samples_at_a_t0_chosen_after_training(tmp_path):
    from pathlib import Path

    from helpers import run_ws_fm

    config = Path(__file__).resolve().parents[1] / "lightning_configs/toy/ws_fm_t0_range.yaml"
    fit = ["fit", "--config", config, "--trainer.max_steps=20", "--trainer.val_check_interval=10"]
    run_ws_fm(fit, tmp_path)
    ckpt = tmp_path / "runs/toy/ws_fm_t0_range/checkpoints/last.ckpt"
    assert ckpt.is_file()
    out = run_ws_fm(["sample", f"--ckpt_path={ckpt}", "--num_samples=50", "--t0=0.9"], tmp_path)
    assert "from t=0.9)" in out.stdout
    cal = ["calibrate-t0", "--config", config, f"--ckpt_path={ckpt}", "--n=300", "--grid=0.5,0.9"]
    out = run_ws_fm(cal, tmp_path)
    assert "refined vs data" in out.stdout and "<- chosen" in out.stdout
    assert float(out.stdout.split("t0 = ")[1].split()[0]) in (0.5, 0.9)
    bad = run_ws_fm(["sample", f"--ckpt_path={ckpt}", "--t0=0.3"], tmp_path, ok=False)
    assert bad.returncode != 0 and "outside t0_range=(0.5, 0.95)" in bad.stderr
