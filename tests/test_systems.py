import pytest
import torch
from helpers import quick_trainer
from torch import nn

from ws_fm.data import ToyDataModule
from ws_fm.drafts import GaussianMixtureDraft
from ws_fm.nets import MLP
from ws_fm.refiners import FlowMatching, WarmStartFlowMatching


def _dm(**kw):
    return ToyDataModule("moons", n_train=2000, n_test=500, batch_size=64, **kw)


def test_cold_fit_then_sample_counts_nfe(tmp_path):
    model = FlowMatching(MLP(), coupling="minibatch_ot")
    quick_trainer(tmp_path).fit(model, _dm())
    assert model.sample_shape == (2,)
    res = model.sample(10, steps=7, solver="midpoint")
    assert res.samples.shape == (10, 2) and torch.isfinite(res.samples).all()
    assert res.nfe == 14


def test_warm_fit_fits_the_draft_and_samples_from_t0(tmp_path):
    model = WarmStartFlowMatching(MLP(), GaussianMixtureDraft(dim=2), t0=0.8)
    quick_trainer(tmp_path).fit(model, _dm())
    assert model.draft.is_fitted
    assert not any(p.requires_grad for p in model.draft.parameters())
    res = model.sample(16, step_size=0.1)
    assert res.nfe == 2 and res.samples.shape == (16, 2)
    assert model.sample(4, solver="dopri5").nfe > 0


def test_warm_training_uses_drafts_from_the_batch_when_given():
    class Boom(nn.Module):
        def sample(self, n, generator=None):
            raise AssertionError("the draft model must not be called when the batch has drafts")

    model = WarmStartFlowMatching(MLP(), Boom(), t0=0.5, coupling="independent")
    x1, xd = torch.randn(8, 2), torch.randn(8, 2)
    ps = model.path_sample({"x1": x1, "draft": xd})
    assert ps.x_t.shape == (8, 2)


def test_checkpoint_round_trip_gives_identical_samples(tmp_path):
    model = WarmStartFlowMatching(MLP(hidden=32), GaussianMixtureDraft(dim=2), t0=0.7)
    trainer = quick_trainer(tmp_path)
    trainer.fit(model, _dm())
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    loaded = WarmStartFlowMatching.load_from_checkpoint(
        ckpt, net=MLP(hidden=32), draft=GaussianMixtureDraft(dim=2), weights_only=False
    )
    assert loaded.t0 == 0.7 and loaded.sample_shape == (2,) and loaded.draft.is_fitted
    torch.manual_seed(5)
    a = model.sample(32, steps=3).samples
    torch.manual_seed(5)
    b = loaded.sample(32, steps=3).samples
    torch.testing.assert_close(a, b)


class WrongShapeDraft(nn.Module):
    def sample(self, n, generator=None):
        return torch.randn(n, 3)


def test_draft_shape_mismatch_fails_before_training(tmp_path):
    model = WarmStartFlowMatching(MLP(), WrongShapeDraft(), t0=0.5)
    before = [p.clone() for p in model.net.parameters()]
    with pytest.raises(
        ValueError, match=r"makes samples of shape \(3,\) but the data has shape \(2,\)"
    ):
        quick_trainer(tmp_path).fit(model, _dm())
    assert all(torch.equal(a, b) for a, b in zip(before, model.net.parameters()))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(t0=1.0), r"t0=1.0 is outside \[0, 1\)"),
        (dict(t0=-0.2), r"t0=-0.2 is outside \[0, 1\)"),
        (dict(sigma=-1.0), r"sigma=-1.0 must be >= 0"),
        (dict(coupling="sinkhorn"), r"unknown coupling='sinkhorn'"),
        (dict(solver="rk45"), r"unknown solver='rk45'"),
        (dict(sample_steps=0), r"sample_steps=0 must be an integer >= 1"),
        (dict(time_sampler="beta"), r"unknown time_sampler='beta'"),
    ],
)
def test_bad_arguments_raise_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WarmStartFlowMatching(MLP(), GaussianMixtureDraft(), **kwargs)


def test_bad_sampling_arguments_raise():
    model = FlowMatching(MLP(), sample_shape=(2,))
    with pytest.raises(ValueError, match="steps=0"):
        model.sample(4, steps=0)
    with pytest.raises(ValueError, match="unknown solver='foo'"):
        model.sample(4, solver="foo")


def test_draft_without_sample_method_is_rejected():
    with pytest.raises(ValueError, match="no sample\\(n\\) method"):
        WarmStartFlowMatching(MLP(), nn.Linear(2, 2))


def test_hooks_are_overridable_in_a_subclass():
    class LogitNormalFM(FlowMatching):
        def sample_time(self, n):
            return torch.full((n,), 0.25)

    model = LogitNormalFM(MLP(), sample_shape=(2,))
    ps = model.path_sample(torch.randn(5, 2))
    assert torch.all(ps.t == 0.25)


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    def run(steps, ckpt_path=None, seed=0):
        model = WarmStartFlowMatching(
            MLP(hidden=32), GaussianMixtureDraft(dim=2, seed=seed), t0=0.8
        )
        ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=1)
        trainer = quick_trainer(
            tmp_path, steps, max_epochs=None, enable_checkpointing=True, callbacks=[ckpt]
        )
        trainer.fit(model, _dm(), ckpt_path=ckpt_path)
        return model, trainer

    first, _ = run(3)
    # A new process: a draft seed that would fit differently, resumed from the last checkpoint.
    resumed, trainer = run(6, ckpt_path="last", seed=7)
    assert trainer.global_step == 6
    torch.testing.assert_close(resumed.draft.means, first.draft.means)  # restored, not refitted


def test_ema_weight_averaging_with_a_sanity_check_and_a_closed_form_draft(tmp_path):
    # EMAWeightAveraging copies the module before setup fits the draft, and swaps that copy in
    # for the sanity check: the refiner must still sample from a fitted draft there.
    from lightning.pytorch.callbacks import EMAWeightAveraging

    model = WarmStartFlowMatching(MLP(hidden=32), GaussianMixtureDraft(dim=2), t0=0.8)
    trainer = quick_trainer(
        tmp_path,
        4,
        max_epochs=None,
        num_sanity_val_steps=2,
        val_check_interval=2,
        check_val_every_n_epoch=None,
        callbacks=[EMAWeightAveraging(decay=0.9)],
    )
    trainer.fit(model, _dm())
    assert model.draft.is_fitted
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
    assert model.sample(8, steps=2).samples.shape == (8, 2)


def test_deepcopy_shares_uncopyable_optimizer_factories_and_copies_weights():
    import copy
    import functools
    import threading

    lock = threading.Lock()  # stands in for what jsonargparse's partials can reference

    def adam(params, lock=lock):
        return torch.optim.Adam(params, lr=1e-3)

    model = FlowMatching(MLP(2), optimizer=functools.partial(adam, lock=lock))
    twin = copy.deepcopy(model)
    assert twin.optimizer_factory is model.optimizer_factory
    a, b = next(model.parameters()), next(twin.parameters())
    assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    with torch.no_grad():
        b.add_(1.0)
    assert not torch.equal(a, b)


def test_class_conditional_toy_trains_and_samples_each_class(tmp_path):
    """net(x, t, **cond): labels in the batch reach the backbone, follow x1 through the OT
    coupling, and sampling with a label gives that class."""
    from torch.utils.data import DataLoader

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (2048,), generator=g)
    centres = torch.tensor([[-3.0, 0.0], [3.0, 0.0]])
    x = centres[y] + 0.3 * torch.randn(2048, 2, generator=g)
    rows = [{"x1": x[i], "cond": {"y": y[i]}} for i in range(len(x))]
    loader = DataLoader(rows, batch_size=128, shuffle=True)
    model = FlowMatching(
        MLP(hidden=64, num_classes=2),
        coupling="minibatch_ot",
        sample_shape=(2,),
        optimizer=lambda p: torch.optim.Adam(p, lr=3e-3),
    )
    quick_trainer(tmp_path, 300, max_epochs=-1, limit_val_batches=0).fit(model, loader)
    for label, sign in ((0, -1), (1, 1)):
        res = model.sample(400, steps=20, cond={"y": torch.full((400,), label)})
        assert res.nfe == 20
        side = (torch.sign(res.samples[:, 0]) == sign).float().mean()
        assert side > 0.95, (label, float(side))


def test_custom_time_sampler_and_time_weighted_loss(tmp_path):
    from ws_fm.time_sampling import LogitNormalTime, TimeSampler

    class Late(TimeSampler):
        def draw_u(self, n, device):
            return torch.full((n,), 0.9, device=device)

    seen = []

    class Weighted(FlowMatching):
        def loss(self, pred, target, t):
            seen.append(t.clone())
            return ((1 + t[:, None]) * (pred - target) ** 2).mean()

    model = Weighted(MLP(hidden=16), time_sampler=Late())
    quick_trainer(tmp_path, 2, limit_val_batches=0).fit(model, _dm())
    assert torch.allclose(seen[0], torch.full_like(seen[0], 0.9))
    warm = WarmStartFlowMatching(
        MLP(hidden=16),
        GaussianMixtureDraft(dim=2),
        t0=0.5,
        time_sampler=LogitNormalTime(loc=2.0, scale=0.1),
    )
    t = warm.sample_time(1000)
    # u = sigmoid(2 +- small) ~ 0.88: t = 0.5 + 0.5 u ~ 0.94.
    assert abs(float(t.mean()) - (0.5 + 0.5 * torch.sigmoid(torch.tensor(2.0)))) < 0.01
    with pytest.raises(ValueError, match="scale"):
        LogitNormalTime(scale=0)


def test_a_refiner_on_the_cosine_path_trains_and_samples(tmp_path):
    from ws_fm.paths import AffinePath, CosineScheduler

    model = WarmStartFlowMatching(
        MLP(hidden=32), GaussianMixtureDraft(dim=2), t0=0.5, path=AffinePath(CosineScheduler())
    )
    assert repr(model.path).startswith("WarmStart(AffinePath(CosineScheduler()")
    quick_trainer(tmp_path, 3).fit(model, _dm())
    res = model.sample(10, steps=4)
    assert res.nfe == 4 and torch.isfinite(res.samples).all()
