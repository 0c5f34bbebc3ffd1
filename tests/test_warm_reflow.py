"""Warm start composed with rectification and distillation (issue 13): WarmReFlow and
WarmOneStepDistillation on a toy, from a trained warm refiner."""

import lightning as L
import pytest
import torch
from helpers import quick_trainer

from ws_fm.data import ToyDataModule, WarmStartDataModule, make_toy
from ws_fm.drafts import GaussianMixtureDraft
from ws_fm.metrics import sliced_wasserstein
from ws_fm.nets import MLP
from ws_fm.refiners import (
    FlowMatching,
    ReFlow,
    WarmOneStepDistillation,
    WarmReFlow,
    WarmStartFlowMatching,
)


def _adam(params):
    return torch.optim.Adam(params, lr=2e-3)


def _net():
    return MLP(dim=2, hidden=64, depth=2)


@pytest.fixture(scope="module")
def dm():
    return ToyDataModule("moons", n_train=4000, batch_size=256)


@pytest.fixture(scope="module")
def teacher(dm, tmp_path_factory):
    L.seed_everything(0, verbose=False)
    model = WarmStartFlowMatching(
        _net(), GaussianMixtureDraft(dim=2, n_components=4), t0=0.5, optimizer=_adam
    )
    quick_trainer(tmp_path_factory.mktemp("t"), 800, max_epochs=None).fit(model, dm)
    return model.eval()


def _student(cls, teacher, dm, tmp_path, **kw):
    L.seed_everything(1, verbose=False)
    model = cls(
        _net(),
        teacher,
        teacher_solver="euler",
        teacher_steps=20,
        online=True,
        optimizer=_adam,
        **kw,
    )
    quick_trainer(tmp_path, 600, max_epochs=None).fit(model, dm)
    return model.eval()


def _start_points(teacher, n=1000):
    torch.manual_seed(3)
    xd = teacher.draw_source(n)
    return teacher.path.start(xd, teacher.path.draw_noise(xd))


def _gap(model, x0, ref):
    """Mean distance of the model's 1-step Euler endpoint from ``ref``."""
    return float((model.integrate(x0, model.t0, "euler", 1).samples - ref).norm(dim=1).mean())


def _sw(model, steps):
    torch.manual_seed(1)
    real = make_toy("moons", 2000, seed=5)
    return sliced_wasserstein(model.sample(2000, solver="euler", steps=steps).samples, real)


def test_warm_reflow_is_straighter_and_better_at_one_step_than_its_teacher(teacher, dm, tmp_path):
    student = _student(WarmReFlow, teacher, dm, tmp_path)
    assert student.t0 == teacher.t0 == 0.5
    x0 = _start_points(teacher)
    # straightness: each model's 1-step endpoint against its own 50-step endpoint
    own_t = teacher.integrate(x0, 0.5, "euler", 50).samples
    own_s = student.integrate(x0, 0.5, "euler", 50).samples
    assert _gap(student, x0, own_s) < 0.3 * _gap(teacher, x0, own_t)
    # one Euler step from the draft: better samples than the teacher's one step
    assert _sw(student, 1) < 0.8 * _sw(teacher, 1)
    assert student.sample(4, solver="euler", steps=1).nfe == 1


def test_warm_distillation_lands_nearer_the_teachers_endpoint_than_its_one_step(
    teacher, dm, tmp_path
):
    student = _student(WarmOneStepDistillation, teacher, dm, tmp_path)
    x0 = _start_points(teacher)
    ref = teacher.integrate(x0, 0.5, "euler", 50).samples
    assert _gap(student, x0, ref) < 0.3 * _gap(teacher, x0, ref)
    assert torch.allclose(student.generate(x0), student.integrate(x0, 0.5, "euler", 1).samples)
    res = student.sample(8)
    assert res.nfe == 1 and res.samples.shape == (8, 2)  # one draft plus one evaluation
    # every training time is t0: the times its 1-step sampler evaluates
    assert torch.all(student.sample_time(64) == 0.5)


def test_warm_pairs_come_from_the_bank(teacher, dm, tmp_path):
    model = WarmReFlow(_net(), teacher, teacher_solver="euler", teacher_steps=4, optimizer=_adam)
    wdm = WarmStartDataModule(dm, bank_size=512, bank_dir=str(tmp_path / "banks"))
    quick_trainer(tmp_path, 3).fit(model, wdm)
    assert wdm.builds == 1
    batch = next(iter(wdm.train_dataloader()))
    x_t0, x1 = batch["source"], batch["x1"]
    # the stored start points are the teacher's drafts placed at t0, the endpoints its samples
    assert x_t0.shape == x1.shape == (256, 2)
    ref = teacher.integrate(x_t0, 0.5, "euler", 4).samples
    assert torch.allclose(ref, x1, atol=1e-5)


def test_teachers_must_match_the_student(teacher):
    cold = FlowMatching(_net(), sample_shape=(2,))
    with pytest.raises(ValueError, match="warm refiner"):
        WarmReFlow(_net(), cold)
    with pytest.raises(ValueError, match="cold flow"):
        ReFlow(_net(), teacher)
    with pytest.raises(ValueError, match="real_fraction"):
        WarmReFlow(_net(), teacher, real_fraction=0.5)
    with pytest.raises(ValueError, match="path"):
        WarmReFlow(_net(), teacher, path=teacher.path.path)


def test_the_warm_student_configs_fit_from_a_warm_teacher(tmp_path):
    from pathlib import Path

    from helpers import run_ws_fm

    from ws_fm.checkpoints import load

    configs = Path(__file__).resolve().parents[1] / "lightning_configs/toy"
    run_ws_fm(["fit", "--config", configs / "ws_fm.yaml", "--trainer.max_steps=20"], tmp_path)
    for name in ("ws_reflow", "ws_distill"):
        run_ws_fm(
            [
                "fit",
                "--config",
                configs / f"{name}.yaml",
                "--trainer.max_steps=3",
                "--data.init_args.bank_size=512",
                "--model.init_args.teacher_solver=euler",
                "--model.init_args.teacher_steps=4",
            ],
            tmp_path,
        )
        model = load(tmp_path / f"runs/toy/{name}/checkpoints/last.ckpt")
        assert model.t0 == 0.8 and model.sample(16, solver="euler", steps=1).nfe == 1, name
