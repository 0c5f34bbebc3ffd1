"""ReFlow (issue 11, deliver 2, core): straighter trajectories and a better 1-step sample."""

import lightning as L
import pytest
import torch
from helpers import quick_trainer

from ws_fm import load
from ws_fm.callbacks import FinalCheckpoint
from ws_fm.data import ToyDataModule, WarmStartDataModule
from ws_fm.metrics import sliced_wasserstein
from ws_fm.nets import MLP
from ws_fm.refiners import ReFlow


@pytest.fixture
def teacher_ckpt(moons_teacher):
    return moons_teacher


def _pair_bank(tmp_path):
    """A bank of the teacher's pairs for a moons student (4,096 pairs, batches of 256)."""
    return WarmStartDataModule(
        ToyDataModule("moons", n_train=4096, batch_size=256),
        bank_size=4096,
        bank_dir=str(tmp_path / "banks"),
        progress=False,
    )


def _straightness(model, n=512):
    """Mean distance of an Euler-100 trajectory from the straight line between its ends."""
    res = model.sample(n, steps=100, return_trajectory=True, seed=1)
    traj = res.trajectory  # (steps + 1, n, 2)
    t = torch.linspace(0, 1, traj.shape[0])[:, None, None]
    line = (1 - t) * traj[0] + t * traj[-1]
    return float((traj - line).norm(dim=-1).mean())


def test_reflow_straightens_the_teacher_and_improves_its_one_step_sample(teacher_ckpt, tmp_path):
    L.seed_everything(0)
    student = ReFlow(
        MLP(dim=2, hidden=64, depth=2), str(teacher_ckpt), teacher_solver="euler", teacher_steps=50
    )
    data = _pair_bank(tmp_path)
    final = FinalCheckpoint(str(tmp_path / "reflow.ckpt"))
    quick_trainer(tmp_path, 400, max_epochs=-1, callbacks=[final]).fit(student, data)
    teacher = student.teacher
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    test = ToyDataModule("moons", n_train=4096, n_test=2000).test_data()

    def one_step(model):
        return sliced_wasserstein(model.sample(2000, steps=1, seed=2).samples, test)

    assert _straightness(student) < 0.5 * _straightness(teacher)
    assert one_step(student) < 0.7 * one_step(teacher)
    # the student's checkpoint samples on its own (teacher included), as a refiner's does
    loaded = load(tmp_path / "reflow.ckpt")
    assert isinstance(loaded, ReFlow)
    assert torch.allclose(
        loaded.sample(8, steps=2, seed=0).samples, student.sample(8, steps=2, seed=0).samples
    )
    # Round 2 chains on round 1's checkpoint, with a share p = 0.65 of synthetic pairs; a
    # one-step distillation can start from the rectified flow the same way.
    from ws_fm.refiners import OneStepDistillation

    round2 = ReFlow(
        MLP(dim=2, hidden=64, depth=2),
        str(tmp_path / "reflow.ckpt"),
        teacher_solver="euler",
        teacher_steps=8,
        online=True,
        real_fraction=0.35,
    )
    assert isinstance(round2.teacher, ReFlow)
    first = next(iter(student.net.state_dict()))  # initialised from round 1's weights
    assert torch.equal(round2.net.state_dict()[first], student.net.state_dict()[first])
    quick_trainer(tmp_path, 3, limit_val_batches=0).fit(
        round2, ToyDataModule("moons", n_train=512, batch_size=64)
    )
    distilled = OneStepDistillation(
        MLP(dim=2, hidden=64, depth=2), str(tmp_path / "reflow.ckpt"), online=True
    )
    assert torch.equal(distilled.net.state_dict()[first], student.net.state_dict()[first])


def test_reflow_refuses_a_student_unlike_its_teacher_and_bad_input(teacher_ckpt, tmp_path):
    with pytest.raises(ValueError, match="student's net differs from the teacher's"):
        ReFlow(MLP(dim=2, hidden=32, depth=2), str(teacher_ckpt))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ReFlow(MLP(dim=2, hidden=64, depth=2), str(tmp_path / "missing.ckpt"))
    with pytest.raises(ValueError, match="real_fraction=1.5"):
        ReFlow(MLP(dim=2, hidden=64, depth=2), str(teacher_ckpt), real_fraction=1.5)
    plain = ReFlow(MLP(dim=2, hidden=64, depth=2), str(teacher_ckpt))
    with pytest.raises(ValueError, match="trains on teacher pairs"):
        quick_trainer(tmp_path, 1).fit(plain, ToyDataModule("moons", n_train=256, batch_size=64))


def test_online_reflow_draws_fresh_pairs_and_mixes_real_data(teacher_ckpt, tmp_path):
    L.seed_everything(0)
    student = ReFlow(
        MLP(dim=2, hidden=64, depth=2),
        str(teacher_ckpt),
        teacher_solver="euler",
        teacher_steps=20,
        online=True,
        real_fraction=0.5,
    )
    before = student.pair_source.generation_cost["pairs"]
    trainer = quick_trainer(tmp_path, 3, limit_val_batches=0)
    trainer.fit(student, ToyDataModule("moons", n_train=512, batch_size=64))
    assert student.pair_source.generation_cost["pairs"] == before + 3 * 64


def test_real_fraction_replaces_that_share_of_pairs_by_noise_and_real_data(teacher_ckpt):
    student = ReFlow(MLP(dim=2, hidden=64, depth=2), str(teacher_ckpt), real_fraction=0.5)
    real = torch.full((100, 2), 7.0)  # recognisable real points
    student.train_data = lambda: real
    z, x1 = torch.zeros(4000, 2), torch.zeros(4000, 2)
    torch.manual_seed(0)
    source, target = student._mix_real(z, x1)
    swapped = (target == 7.0).all(dim=1)
    assert 0.45 < float(swapped.float().mean()) < 0.55
    assert bool((source[swapped] != 0).all()) and bool((source[~swapped] == 0).all())


def test_u_shaped_time_follows_its_density():
    from ws_fm.time_sampling import UShapedTime, resolve_time_sampler

    torch.manual_seed(0)
    u = UShapedTime(a=4.0).draw_u(200_000, "cpu")
    assert float(u.min()) >= 0 and float(u.max()) <= 1
    hist = torch.histc(u, bins=10, min=0, max=1) / len(u)
    # expected mass per bin: integral of cosh(4 (u - 1/2)) / (2 sinh(2) / 4)
    edges = torch.linspace(0, 1, 11)
    cdf = (torch.sinh(4 * (edges - 0.5)) + torch.sinh(torch.tensor(2.0))) / (
        2 * torch.sinh(torch.tensor(2.0))
    )
    assert torch.allclose(hist, cdf.diff(), atol=3e-3)
    assert hist[0] > 3 * hist[5]  # U-shaped: the ends weigh more than the middle
    assert isinstance(resolve_time_sampler("u_shaped"), UShapedTime)
    with pytest.raises(ValueError, match="a=0"):
        UShapedTime(a=0)


def test_one_step_distillation_lands_nearer_the_teachers_endpoint(teacher_ckpt, tmp_path):
    from ws_fm.refiners import OneStepDistillation

    L.seed_everything(0)
    student = OneStepDistillation(
        MLP(dim=2, hidden=64, depth=2), str(teacher_ckpt), teacher_solver="euler", teacher_steps=50
    )
    data = _pair_bank(tmp_path)
    final = FinalCheckpoint(str(tmp_path / "distill.ckpt"))
    quick_trainer(tmp_path, 300, max_epochs=-1, callbacks=[final]).fit(student, data)
    z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(5))
    teacher = student.teacher
    from ws_fm.solvers import solve

    x1 = solve(teacher.velocity(), z, 0.0, "euler", steps=50).samples  # the teacher's endpoint
    teacher_1 = solve(teacher.velocity(), z, 0.0, "euler", steps=1).samples
    student_1 = student.integrate(z, 0.0, "euler", steps=1)
    assert student_1.nfe == 1
    err_student = float((student_1.samples - x1).norm(dim=1).mean())
    err_teacher = float((teacher_1 - x1).norm(dim=1).mean())
    assert err_student < 0.5 * err_teacher
    assert torch.allclose(student.generate(z), student_1.samples, atol=1e-5)  # G(z) = 1 Euler step
    loaded = load(tmp_path / "distill.ckpt")
    assert torch.allclose(loaded.generate(z), student.generate(z), atol=1e-6)
    with pytest.raises(ValueError, match="distance"):
        OneStepDistillation(MLP(dim=2, hidden=64, depth=2), str(teacher_ckpt), distance="lpips")
    with pytest.raises(ValueError, match="needs a features network"):
        OneStepDistillation(MLP(dim=2, hidden=64, depth=2), str(teacher_ckpt), feature_weight=1.0)


def test_distillation_with_an_adversarial_term_trains_the_critic_and_the_student(
    teacher_ckpt, tmp_path
):
    from ws_fm.nets import MLPCritic
    from ws_fm.refiners import OneStepDistillation
    from ws_fm.solvers import solve

    L.seed_everything(0)
    critic = MLPCritic(2)
    before = [p.detach().clone() for p in critic.parameters()]
    student = OneStepDistillation(
        MLP(dim=2, hidden=64, depth=2),
        str(teacher_ckpt),
        teacher_solver="euler",
        teacher_steps=50,
        discriminator=critic,
        adversarial_weight=0.1,
        r1_gamma=1.0,
    )
    assert not student.automatic_optimization
    final = FinalCheckpoint(str(tmp_path / "adv.ckpt"))
    trainer = quick_trainer(tmp_path, 400, max_epochs=-1, callbacks=[final])
    trainer.fit(student, _pair_bank(tmp_path))
    assert trainer.global_step == 400  # one critic and one student step per batch: 200 batches
    assert all(not torch.equal(a, b) for a, b in zip(before, critic.parameters()))
    z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(5))
    teacher = student.teacher
    x1 = solve(teacher.velocity(), z, 0.0, "euler", steps=50).samples
    teacher_1 = solve(teacher.velocity(), z, 0.0, "euler", steps=1).samples
    err_student = float((student.generate(z) - x1).norm(dim=1).mean())
    assert err_student < 0.5 * float((teacher_1 - x1).norm(dim=1).mean())
    loaded = load(tmp_path / "adv.ckpt")  # the critic travels with the checkpoint
    assert isinstance(loaded.discriminator, MLPCritic)
    assert torch.allclose(loaded.generate(z), student.generate(z), atol=1e-6)
    with pytest.raises(ValueError, match="needs a discriminator"):
        OneStepDistillation(
            MLP(dim=2, hidden=64, depth=2), str(teacher_ckpt), adversarial_weight=0.1
        )
    with pytest.raises(ValueError, match="no lr_scheduler"):
        OneStepDistillation(
            MLP(dim=2, hidden=64, depth=2),
            str(teacher_ckpt),
            discriminator=MLPCritic(2),
            adversarial_weight=0.1,
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 10),
        )


def test_reflow_pseudo_huber_is_2rf_plus_plus_loss(teacher_ckpt):
    from ws_fm.losses import distance, pseudo_huber

    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(8, 3, 4, 4, generator=g), torch.randn(8, 3, 4, 4, generator=g)
    d = 48
    c = 0.00054 * d
    norms = (pred - target).flatten(1).norm(dim=1)
    expected = ((torch.sqrt(norms**2 + c**2) - c) / d).mean()
    assert torch.allclose(distance(pred, target, "pseudo_huber", per_dim=True), expected)
    # the consistency-model constant c = 0.00054 sqrt(d), no division (distillation's default)
    c2 = 0.00054 * d**0.5
    assert torch.allclose(pseudo_huber(pred - target), (torch.sqrt(norms**2 + c2**2) - c2).mean())
    with pytest.raises(ValueError, match="distance"):
        ReFlow(MLP(dim=2), torch.nn.Linear(2, 2), distance="huber")
    # ReFlow regresses its velocities with it (and with the MSE by default)
    pred, target = torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g)
    t = torch.rand(8, generator=g)
    rf = ReFlow(MLP(dim=2, hidden=64, depth=2), str(teacher_ckpt), distance="pseudo_huber")
    norms, c = (pred - target).norm(dim=1), 0.00054 * 2
    assert torch.allclose(rf.loss(pred, target, t), ((torch.sqrt(norms**2 + c**2) - c) / 2).mean())
    plain = ReFlow(MLP(dim=2, hidden=64, depth=2), str(teacher_ckpt))
    assert torch.allclose(plain.loss(pred, target, t), ((pred - target) ** 2).mean())


def test_k_step_distillation_is_reflow_on_the_sampler_grid(teacher_ckpt, tmp_path):
    """ReFlow with GridTime(k) trains only at t in {i/k}: the k-step variant of distillation
    (Rectified Flow's reflow_t_schedule = k); its 2-step sample lands nearer the teacher's
    endpoint than the teacher's own 2-step Euler."""
    from ws_fm.solvers import solve
    from ws_fm.time_sampling import GridTime

    torch.manual_seed(0)
    u = GridTime(4).draw_u(4000, "cpu")
    assert set(u.unique().tolist()) == {0.0, 0.25, 0.5, 0.75}
    with pytest.raises(ValueError, match="k=0"):
        GridTime(0)
    L.seed_everything(0)
    student = ReFlow(
        MLP(dim=2, hidden=64, depth=2),
        str(teacher_ckpt),
        teacher_solver="euler",
        teacher_steps=50,
        time_sampler=GridTime(2),
        sample_steps=2,
    )
    quick_trainer(tmp_path, 300, max_epochs=-1).fit(student, _pair_bank(tmp_path))
    z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(5))
    teacher = student.teacher
    x1 = solve(teacher.velocity(), z, 0.0, "euler", steps=50).samples
    teacher_2 = solve(teacher.velocity(), z, 0.0, "euler", steps=2).samples
    student_2 = student.integrate(z, 0.0, "euler", steps=2)
    assert student_2.nfe == 2
    err = float((student_2.samples - x1).norm(dim=1).mean())
    assert err < 0.5 * float((teacher_2 - x1).norm(dim=1).mean())
