"""The user's path after ``fit``: standalone checkpoints, ``ws-fm sample``, one set of weights,
resume with ``last``, refusing bad input before work, readable errors (issue 10)."""

import subprocess
import sys

import lightning as L
import pytest
import torch
import yaml
from helpers import quick_trainer, run_ws_fm
from lightning.pytorch.callbacks import EMAWeightAveraging, LambdaCallback

from ws_fm import load
from ws_fm.callbacks import FIDCallback, FinalCheckpoint, StepProgressBar
from ws_fm.data import ImageDataModule, ToyDataModule, WarmStartDataModule
from ws_fm.drafts import DraftCheckpoint, GaussianDraft, GaussianMixtureDraft, NGramDraft
from ws_fm.nets import MLP, UNet
from ws_fm.refiners import FlowMatching, WarmStartFlowMatching

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _fresh_python(code: str, cwd) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def digits_refiner(tmp_path_factory):
    """A warm digits refiner whose draft came from a draft checkpoint that is then deleted."""
    tmp = tmp_path_factory.mktemp("digits")
    L.seed_everything(0)
    draft = GaussianDraft((1, 8, 8))
    trainer = quick_trainer(tmp, 1, callbacks=[FinalCheckpoint(str(tmp / "draft.ckpt"))])
    trainer.fit(draft, ImageDataModule("digits", batch_size=32))
    model = WarmStartFlowMatching(
        UNet(channels=8, channel_mults=(1,)),
        DraftCheckpoint(str(tmp / "draft.ckpt")),  # no draft_class: read from the file
        t0=0.8,
        sample_steps=2,
    )
    trainer = quick_trainer(tmp, 3, callbacks=[FinalCheckpoint(str(tmp / "refiner.ckpt"))])
    data = WarmStartDataModule(
        ImageDataModule("digits", batch_size=32), bank_size=64, bank_dir=str(tmp / "banks")
    )
    trainer.fit(model, data)
    (tmp / "draft.ckpt").unlink()  # the refiner's checkpoint must not need it
    return tmp / "refiner.ckpt", model


def test_refiner_checkpoint_loads_and_samples_alone_in_a_fresh_process(digits_refiner):
    ckpt, model = digits_refiner
    expected = model.sample(5, steps=2, seed=3).samples
    code = (
        "import torch, ws_fm\n"
        f"m = ws_fm.load({str(ckpt)!r})\n"
        "print(type(m).__name__, m.t0, tuple(m.sample_shape))\n"
        "x = m.sample(5, steps=2, seed=3).samples\n"
        f"torch.save(x, {str(ckpt.parent / 'fresh.pt')!r})\n"
        f"m2 = type(m).load_from_checkpoint({str(ckpt)!r})\n"
        "print(torch.equal(m2.sample(5, steps=2, seed=3).samples, x))\n"
    )
    out = _fresh_python(code, ckpt.parent)
    assert out.splitlines() == ["WarmStartFlowMatching 0.8 (1, 8, 8)", "True"]
    assert torch.allclose(torch.load(ckpt.parent / "fresh.pt"), expected, atol=1e-6)


def test_sample_seed_is_reproducible_and_leaves_the_global_state_alone():
    model = FlowMatching(MLP(dim=2, hidden=16, depth=1), sample_shape=(2,), sample_steps=2)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = model.sample(4, seed=7).samples
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a, model.sample(4, seed=7).samples)
    assert not torch.equal(a, model.sample(4, seed=8).samples)


def test_ws_fm_sample_writes_files_and_prints_nfe(digits_refiner, tmp_path):
    ckpt, _ = digits_refiner
    out = run_ws_fm(
        ["sample", f"--ckpt_path={ckpt}", "--num_samples=12", "--steps=4", f"--out={tmp_path}/s"],
        tmp_path,
    )
    assert "wrote 12 samples" in out.stdout and "4 NFE" in out.stdout
    assert "from t=0.8" in out.stdout and "draft" in out.stdout and "refine" in out.stdout
    saved = torch.load(tmp_path / "s" / "samples.pt")
    assert saved["samples"].shape == (12, 1, 8, 8) and saved["nfe"] == 4
    assert (tmp_path / "s" / "grid.png").stat().st_size > 1000
    assert len(list((tmp_path / "s" / "images").glob("*.png"))) == 12
    # another start time for a warm system: the counted NFE follows (steps over [t0, 1])
    out = run_ws_fm(
        [
            "sample",
            f"--ckpt_path={ckpt}",
            "--num_samples=4",
            "--steps=4",
            "--t0=0.5",
            f"--out={tmp_path}/s2",
        ],
        tmp_path,
    )
    assert "from t=0.5" in out.stdout


def test_logged_fid_equals_the_fid_of_the_saved_checkpoint(tmp_path):
    """EMA listed before the FID callback (the order that used to measure the raw weights)."""
    L.seed_everything(0)
    model = FlowMatching(UNet(channels=8, channel_mults=(1,)), sample_steps=2)
    fid = FIDCallback(num_samples=64, batch_size=64, max_real=200)
    ema = EMAWeightAveraging(decay=0.9)
    final = FinalCheckpoint(str(tmp_path / "final.ckpt"))
    raw: dict = {}
    keep_raw = LambdaCallback(
        on_train_batch_end=lambda tr, m, *a: raw.update(
            {k: v.clone() for k, v in m.state_dict().items()}
        )
    )
    trainer = quick_trainer(tmp_path, 6, callbacks=[keep_raw, ema, fid, final])
    trainer.fit(model, ImageDataModule("digits", batch_size=32))
    logged = fid.last
    loaded = FlowMatching.load_from_checkpoint(tmp_path / "final.ckpt")
    assert fid.evaluate(trainer, loaded) == pytest.approx(logged, rel=1e-6)
    # and it is not the FID of the raw (unaveraged) weights of the last step
    loaded.load_state_dict(raw)
    assert fid.evaluate(trainer, loaded) != pytest.approx(logged, rel=1e-3)


def _resume_config(tmp_path, root, die_at=None):
    cfg = yaml.safe_load((ROOT / "lightning_configs/toy/ws_fm.yaml").read_text())
    t = cfg["trainer"]
    t.update(max_steps=20, limit_val_batches=0, default_root_dir=str(root), logger=False)
    for cb in t["callbacks"]:
        args = cb.setdefault("init_args", {})
        if cb["class_path"].endswith("ModelCheckpoint"):
            args.update(dirpath=str(root / "checkpoints"), every_n_train_steps=10)
        if cb["class_path"].endswith("FinalCheckpoint"):
            args.update(path=str(root / "checkpoints" / "last.ckpt"))
        if cb["class_path"].endswith("EMAWeightAveraging"):
            args.update(update_starting_at_step=5)
    if die_at is not None:
        t["callbacks"].append(
            {"class_path": "custom_pieces.DieAtStep", "init_args": {"step": die_at}}
        )
    cfg["model"]["init_args"]["net"]["init_args"].update(hidden=32, depth=2)
    cfg["data"]["init_args"].update(n_train=640, n_test=200, batch_size=64)  # 10 steps an epoch
    path = tmp_path / f"{root.name}-{die_at}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_kill_and_resume_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "tests"))  # for custom_pieces.DieAtStep
    whole = _resume_config(tmp_path, tmp_path / "whole")
    run_ws_fm(["fit", "--config", whole], tmp_path)
    killed = _resume_config(tmp_path, tmp_path / "killed", die_at=15)
    out = run_ws_fm(["fit", "--config", killed], tmp_path, ok=False)
    assert out.returncode != 0  # killed at step 15, after the step-10 checkpoint
    assert (
        torch.load(tmp_path / "killed/checkpoints/last.ckpt", weights_only=False)["global_step"]
        == 10
    )
    resumed = _resume_config(tmp_path, tmp_path / "killed")
    out = run_ws_fm(["fit", "--config", resumed, "--ckpt_path=last"], tmp_path)
    assert "fit finished at step 20" in out.stdout
    steps = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("step ")]
    assert steps[0] == "11/20" and steps[-1] == "20/20"  # continued at step 10, not from 0
    other = _resume_config(tmp_path, tmp_path / "other")
    run_ws_fm(["fit", "--config", other, "--seed_everything=1"], tmp_path)
    a, b, c = (
        torch.load(tmp_path / f"{name}/checkpoints/last.ckpt", weights_only=False)
        for name in ("whole", "killed", "other")
    )
    assert a["global_step"] == b["global_step"] == c["global_step"] == 20

    def distance(x, y):
        return max((x["state_dict"][k] - y["state_dict"][k]).abs().max() for k in x["state_dict"])

    # Model, optimizer, EMA and random states are restored; the data order is not (Lightning
    # re-enters the interrupted epoch and draws an order from the global random state again),
    # so the last 10 steps see other batches: the resumed run ends near the uninterrupted one,
    # far nearer than a run with another seed (restarting from step 0 would be as far).
    assert distance(a, b) < 0.1 * distance(a, c)
    # a checkpoint written by the CLI samples on its own, too
    out = run_ws_fm(
        [
            "sample",
            f"--ckpt_path={tmp_path}/killed/checkpoints/last.ckpt",
            "--num_samples=8",
            f"--out={tmp_path}/toy-samples",
        ],
        tmp_path,
    )
    assert torch.load(tmp_path / "toy-samples/samples.pt")["samples"].shape == (8, 2)


def test_a_mismatched_draft_is_refused_before_any_bank_file_exists(tmp_path):
    draft = NGramDraft(vocab_size=50, seq_len=64)  # a text draft for an image refiner
    model = WarmStartFlowMatching(UNet(channels=8, channel_mults=(1,)), draft, t0=0.8)
    data = WarmStartDataModule(
        ImageDataModule("digits", batch_size=32), bank_size=64, bank_dir=str(tmp_path / "banks")
    )
    with pytest.raises(ValueError, match=r"NGramDraft\) makes samples of shape \(64,\)"):
        quick_trainer(tmp_path, 1).fit(model, data)
    assert not (tmp_path / "banks").exists() or not any((tmp_path / "banks").iterdir())


def test_draft_class_is_read_from_the_checkpoint_and_a_mismatch_names_both(tmp_path):
    L.seed_everything(0)
    draft = GaussianDraft((1, 8, 8))
    quick_trainer(tmp_path, 1, callbacks=[FinalCheckpoint(str(tmp_path / "d.ckpt"))]).fit(
        draft, ImageDataModule("digits", batch_size=32)
    )
    assert isinstance(DraftCheckpoint(str(tmp_path / "d.ckpt")).draft, GaussianDraft)
    assert isinstance(load(tmp_path / "d.ckpt"), GaussianDraft)
    with pytest.raises(
        ValueError, match="holds a GaussianDraft, but draft_class asks for VAEDraft"
    ):
        DraftCheckpoint(str(tmp_path / "d.ckpt"), draft_class="ws_fm.drafts.VAEDraft")


def test_a_bad_t0_prints_one_readable_line(tmp_path):
    config = ROOT / "lightning_configs/toy/ws_fm.yaml"
    out = run_ws_fm(["fit", "--config", config, "--model.init_args.t0=1.5"], tmp_path, ok=False)
    assert out.returncode == 1
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert len(lines) < 10
    error = next(line for line in lines if line.startswith("error:"))
    assert "t0=1.5" in error and "[0, 1)" in error
    debug = run_ws_fm(
        ["fit", "--config", config, "--model.init_args.t0=1.5", "--debug"], tmp_path, ok=False
    )
    assert "Traceback" in debug.stderr


def test_a_generator_with_non_finite_drafts_writes_no_bank(tmp_path):
    draft = GaussianMixtureDraft(dim=2, n_components=2).fit(torch.randn(100, 2))
    draft.means.fill_(float("nan"))
    model = WarmStartFlowMatching(MLP(dim=2, hidden=16, depth=1), draft, t0=0.8)
    data = WarmStartDataModule(
        ToyDataModule("moons", n_train=256, batch_size=64),
        bank_size=64,
        bank_dir=str(tmp_path / "banks"),
        progress=False,
    )
    with pytest.raises(ValueError, match="non-finite values in column 'source'"):
        data.prepare_bank(model)
    assert not any(p.name.startswith("GaussianMixture") for p in (tmp_path / "banks").iterdir())


def test_fid_callback_refuses_non_finite_samples(tmp_path):
    model = FlowMatching(UNet(channels=8, channel_mults=(1,)), sample_steps=1)
    fid = FIDCallback(num_samples=8, batch_size=8, max_real=50)
    trainer = quick_trainer(tmp_path, 1, callbacks=[fid])
    trainer.fit(model, ImageDataModule("digits", batch_size=8))
    with torch.no_grad():
        for p in model.net.parameters():
            p.fill_(float("nan"))
    with pytest.raises(ValueError, match="non-finite values"):
        fid.evaluate(trainer, model)


def test_step_progress_bar_prints_steps_out_of_max_steps_when_not_a_terminal(tmp_path, capsys):
    model = FlowMatching(MLP(dim=2, hidden=16, depth=1))
    bar = StepProgressBar(plain=True, log_every=5)
    trainer = L.Trainer(
        max_steps=10,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[bar],
    )
    trainer.fit(model, ToyDataModule("moons", n_train=256, batch_size=64))
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("step ")]
    assert [x.split()[1] for x in lines] == ["5/10", "10/10"]
    assert "it/s" in lines[-1]


def test_a_text_checkpoint_carries_its_tokenizer_and_samples_to_text(tmp_path):
    from helpers import small_text_dm

    from ws_fm.nets import TokenTransformer
    from ws_fm.refiners import DiscreteFlowMatching
    from ws_fm.sampling import sample_to_files

    dm = small_text_dm(tmp_path)
    dm.setup("fit")
    vocab = dm.tokenizer.vocab_size
    model = DiscreteFlowMatching(
        TokenTransformer(vocab, 16, dim=16, depth=1, heads=2), sample_steps=2
    )
    ckpt = tmp_path / "dfm.ckpt"
    quick_trainer(tmp_path, 2, callbacks=[FinalCheckpoint(str(ckpt))]).fit(model, dm)
    loaded = load(ckpt)
    assert loaded.tokenizer.fingerprint == dm.tokenizer.fingerprint
    report = sample_to_files(loaded, 5, tmp_path / "out", seed=0)
    lines = (tmp_path / "out" / "samples.txt").read_text().split("\n")[:-1]
    assert len(lines) == 5 and report.nfe == 2 and "samples.txt" in report.files


def test_fit_help_lists_the_ws_fm_systems(tmp_path):
    out = run_ws_fm(["fit", "--help"], tmp_path)
    text = " ".join(out.stdout.split())
    for name in ("ws_fm.refiners.WarmStartFlowMatching", "ws_fm.drafts.VAEDraft"):
        assert name in text


def test_the_readme_walk_from_fit_to_samples_to_resume_runs_as_written(tmp_path):
    """The README's "After fit" commands, run as written (from a folder holding the configs)."""
    import os
    import shlex

    text = (ROOT / "README.md").read_text()
    block = text.split("## After `fit`", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [c.split("#", 1)[0].strip() for c in block.strip().splitlines()]
    commands = [c for c in commands if c]
    assert [shlex.split(c)[1] for c in commands] == ["fit", "sample", "fit"]
    os.symlink(ROOT / "lightning_configs", tmp_path / "lightning_configs")
    outs = [run_ws_fm(shlex.split(c)[1:], tmp_path) for c in commands]
    assert "fit finished at step 200" in outs[0].stdout
    assert "wrote 1000 samples to samples/toy" in outs[1].stdout and "4 NFE" in outs[1].stdout
    assert torch.load(tmp_path / "samples/toy/samples.pt")["samples"].shape == (1000, 2)
    assert "fit finished at step 300" in outs[2].stdout
    first = next(x for x in outs[2].stdout.splitlines() if x.startswith("step "))
    assert first.startswith("step 2")  # continued from step 200, not from step 0
