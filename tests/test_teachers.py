"""Teachers and teacher pairs in the sample bank (issue 11, deliver 1)."""

import json
import warnings

import lightning as L
import pytest
import torch
from helpers import quick_trainer

from ws_fm.callbacks import FinalCheckpoint
from ws_fm.couplings import TeacherPairCoupling
from ws_fm.data import ToyDataModule
from ws_fm.data.warm_start_datamodule import PairedSources, draft_bank
from ws_fm.drafts import GaussianMixtureDraft
from ws_fm.nets import MLP
from ws_fm.refiners import FlowMatching, WarmStartFlowMatching
from ws_fm.solvers import solve
from ws_fm.teachers import TeacherPairSource, load_teacher


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("teacher")
    L.seed_everything(0)
    model = FlowMatching(MLP(dim=2, hidden=32, depth=2), coupling="minibatch_ot")
    trainer = quick_trainer(tmp, 30, callbacks=[FinalCheckpoint(str(tmp / "teacher.ckpt"))])
    trainer.fit(model, ToyDataModule("moons", n_train=512, batch_size=128))
    return tmp / "teacher.ckpt"


def test_a_teacher_loads_from_its_checkpoint_alone_frozen(teacher_ckpt):
    teacher = load_teacher(teacher_ckpt)
    assert isinstance(teacher, FlowMatching) and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    assert teacher.sample_shape == (2,)


def test_bad_teachers_are_refused_early(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_teacher(tmp_path / "nope.ckpt")
    warm = WarmStartFlowMatching(
        MLP(dim=2, hidden=8, depth=1), GaussianMixtureDraft(dim=2), t0=0.8, sample_shape=(2,)
    )
    with pytest.raises(ValueError, match="continuous cold flow sampling from noise at t = 0"):
        TeacherPairSource(warm)


def _bank(tmp_path, source, size=96, **kw):
    reference = torch.zeros(10, 2)  # teacher pairs do not read the training data
    return draft_bank(
        tmp_path / "pairs",
        source,
        TeacherPairCoupling(),
        size,
        reference,
        chunk=32,
        progress=False,
        **kw,
    )


def test_the_bank_holds_the_teachers_pairs_and_their_cost(teacher_ckpt, tmp_path):
    source = TeacherPairSource(str(teacher_ckpt), solver="euler", steps=8)
    bank = _bank(tmp_path, source)
    rows = bank.rows(list(range(len(bank))), ("source", "target"))
    assert rows["source"].shape == rows["target"].shape == (96, 2)
    # each target is the teacher's Euler-8 solve from its noise
    teacher = source.teacher
    again = solve(teacher.velocity(), rows["source"], 0.0, "euler", steps=8).samples
    assert torch.allclose(again, rows["target"], atol=1e-5)
    meta = json.loads((tmp_path / "pairs" / "meta.json").read_text())
    gen = meta["generation"]
    # three chunks of 32 (and the one-row probe), 8 teacher evaluations each
    assert gen["pairs"] == 97 and gen["teacher_nfe"] == 4 * 8 and gen["seconds"] > 0
    assert gen["sample_nfe"] == 97 * 8  # network evaluations per pair, summed over pairs
    batch = PairedSources(torch.zeros(10, 2), bank).__getitems__([0, 5])
    assert torch.equal(batch["x1"], rows["target"][[0, 5]]) and batch["paired"]


def test_changed_solver_settings_rebuild_and_equal_ones_reuse(teacher_ckpt, tmp_path):
    a = _bank(tmp_path, TeacherPairSource(str(teacher_ckpt), solver="euler", steps=4))
    stamp = (tmp_path / "pairs" / "meta.json").stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reuse must not warn
        _bank(tmp_path, TeacherPairSource(str(teacher_ckpt), solver="euler", steps=4))
    assert (tmp_path / "pairs" / "meta.json").stat().st_mtime_ns == stamp
    with pytest.warns(UserWarning, match="rebuilding"):
        b = _bank(tmp_path, TeacherPairSource(str(teacher_ckpt), solver="euler", steps=16))
    assert a.fingerprint != b.fingerprint
    with pytest.warns(UserWarning, match="rebuilding"):
        _bank(tmp_path, TeacherPairSource(str(teacher_ckpt), solver="dopri5"))


def test_an_interrupted_build_leaves_no_bank(teacher_ckpt, tmp_path):
    class Failing(TeacherPairSource):
        def pairs(self, n, generator=None):
            if self.generation_cost["pairs"] >= 33:  # fails in the second chunk
                raise RuntimeError("interrupted")
            return super().pairs(n, generator)

    with pytest.raises(RuntimeError, match="interrupted"):
        _bank(tmp_path, Failing(str(teacher_ckpt), solver="euler", steps=2))
    assert not (tmp_path / "pairs").exists()
    assert not list(tmp_path.glob(".pairs.tmp-*"))
    bank = _bank(tmp_path, TeacherPairSource(str(teacher_ckpt), solver="euler", steps=2))
    assert len(bank) == 96


def test_a_cold_flow_trains_on_teacher_pairs_through_the_datamodule(teacher_ckpt, tmp_path):
    """The bank's pairs reach training as they are: 2-rectified-flow training from the pairs."""
    from ws_fm.data import WarmStartDataModule

    source = TeacherPairSource(str(teacher_ckpt), solver="euler", steps=4)
    data = WarmStartDataModule(
        ToyDataModule("moons", n_train=512, batch_size=64),
        bank_size=256,  # 4 batches of 64: one epoch holds the 3 steps
        bank_dir=str(tmp_path / "banks"),
        generator=source,
        progress=False,
    )
    student = FlowMatching(MLP(dim=2, hidden=32, depth=2), coupling="teacher_pairs")
    seen = []

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(batch)

    quick_trainer(tmp_path, 3, callbacks=[Spy()]).fit(student, data)
    assert len(seen) == 3 and all(b["paired"] for b in seen)
    bank = data.bank
    targets = bank.rows(list(range(len(bank))), ("target",))["target"]
    # every training endpoint is one of the teacher's samples, not a data point
    for b in seen:
        d = torch.cdist(b["x1"], targets, compute_mode="donot_use_mm_for_euclid_dist").min(1).values
        assert float(d.max()) < 1e-6
    assert (tmp_path / "banks").is_dir() and any(
        "teacher_pairs" in p.name for p in (tmp_path / "banks").iterdir()
    )
