"""The peers from their YAML configs (issue 11, deliver 5): the README's teacher-then-student
commands as written, each method under two-process DDP, the image configs, and bad input."""

import os
import shlex
from pathlib import Path

import pytest
import torch
from helpers import run_ws_fm

from ws_fm import load
from ws_fm.data import ToyDataModule
from ws_fm.metrics import sliced_wasserstein

ROOT = Path(__file__).resolve().parents[1]

METHODS = ("reflow", "distill", "fgm")
CLASSES = {"reflow": "ReFlow", "distill": "OneStepDistillation", "fgm": "FlowGeneratorMatching"}


def _config(task, name):
    return str(ROOT / "lightning_configs" / task / f"{name}.yaml")


@pytest.fixture(scope="module")
def toy_teacher(tmp_path_factory):
    """A briefly trained toy teacher from its own config."""
    tmp = tmp_path_factory.mktemp("toy_teacher")
    run_ws_fm(
        [
            "fit",
            "--config",
            _config("toy", "cold_fm"),
            "--trainer.max_steps=30",
            "--trainer.limit_val_batches=1",
        ],
        tmp,
    )
    return tmp / "runs/toy/cold_fm/checkpoints/last.ckpt"


@pytest.mark.timeout(900)
def test_the_readme_teacher_then_student_commands_run_as_written(tmp_path):
    text = (ROOT / "README.md").read_text()
    block = text.split("## The fast-sampling peers", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [c.split("#", 1)[0].strip() for c in block.strip().splitlines()]
    commands = [shlex.split(c) for c in commands if c]
    assert [c[1] for c in commands] == ["fit", "fit", "fit", "fit", "sample"]
    os.symlink(ROOT / "lightning_configs", tmp_path / "lightning_configs")
    outs = [run_ws_fm(c[1:], tmp_path) for c in commands]
    assert "wrote 1000 samples to samples/toy_fgm" in outs[-1].stdout and "1 NFE" in outs[-1].stdout
    assert torch.load(tmp_path / "samples/toy_fgm/samples.pt")["samples"].shape == (1000, 2)
    # Each student beats its teacher's own 1-step Euler sample by at least 2x (the target,
    # here on the configs' checkerboard).
    test = ToyDataModule("checkerboard", n_train=20000, n_test=5000).test_data()
    runs = tmp_path / "runs/toy"

    def quality(model, steps):
        return sliced_wasserstein(model.sample(4000, steps=steps, seed=3).samples, test)

    teacher_1 = quality(load(runs / "cold_fm/checkpoints/last.ckpt"), 1)
    for name in METHODS:
        student = load(runs / name / "checkpoints/last.ckpt")
        assert type(student).__name__ == CLASSES[name]
        assert quality(student, 1) < 0.5 * teacher_1, name
    meta = (runs / "teacher_banks/TeacherPairSource-20000-teacher_pairs/meta.json").read_text()
    assert '"teacher_nfe"' in meta


ADVERSARIAL = [
    "--model.init_args.adversarial_weight=0.1",
    "--model.init_args.discriminator=ws_fm.nets.MLPCritic",
    "--model.init_args.discriminator.dim=2",
]


@pytest.mark.parametrize("name", [*METHODS, "distill+adversarial"])
def test_each_peer_fits_under_two_process_ddp_from_its_config(name, toy_teacher, tmp_path):
    name, _, variant = name.partition("+")
    out = run_ws_fm(
        [
            "fit",
            "--config",
            _config("toy", name),
            *(ADVERSARIAL if variant else []),
            f"--model.init_args.teacher={toy_teacher}",
            "--trainer.accelerator=cpu",
            "--trainer.devices=2",
            "--trainer.strategy=ddp",
            "--trainer.max_steps=4",
            "--trainer.limit_val_batches=1",
            "--data.init_args.n_train=2048" if name == "fgm" else "--data.init_args.bank_size=2048",
        ],
        tmp_path,
    )
    assert "fit finished at step 4" in out.stdout
    model = load(tmp_path / f"runs/toy/{name}/checkpoints/last.ckpt")
    assert type(model).__name__ == CLASSES[name]
    assert model.sample(16, seed=0).samples.shape == (16, 2)


@pytest.mark.timeout(900)
def test_the_digits_configs_fit_from_a_digits_teacher(tmp_path):
    run_ws_fm(
        ["fit", "--config", _config("digits", "cold_fm"), "--trainer.fast_dev_run=true"], tmp_path
    )
    for name in METHODS:
        extra = [] if name == "fgm" else ["--data.init_args.bank_size=256"]
        run_ws_fm(
            ["fit", "--config", _config("digits", name), "--trainer.fast_dev_run=true", *extra],
            tmp_path,
        )
        model = load(tmp_path / f"runs/digits/{name}/checkpoints/last.ckpt")
        assert model.sample(4, seed=0).samples.shape == (4, 1, 8, 8)


@pytest.mark.parametrize("name", METHODS)
def test_the_gpu_sized_fashion_configs_parse(name, tmp_path):
    out = run_ws_fm(["fit", "--config", _config("fashion_mnist", name), "--print_config"], tmp_path)
    assert f"class_path: ws_fm.refiners.{CLASSES[name]}" in out.stdout


def test_bad_teachers_are_refused_in_one_line_before_training(toy_teacher, tmp_path):
    missing = run_ws_fm(["fit", "--config", _config("toy", "reflow")], tmp_path, ok=False)
    assert missing.returncode != 0
    assert (
        "error: FileNotFoundError: checkpoint runs/toy/cold_fm/checkpoints/last.ckpt does not"
        in (missing.stderr)
    )
    narrow = run_ws_fm(
        [
            "fit",
            "--config",
            _config("toy", "fgm"),
            f"--model.init_args.teacher={toy_teacher}",
            "--model.init_args.net.init_args.hidden=64",
        ],
        tmp_path,
        ok=False,
    )
    assert "the student's net differs from the teacher's" in narrow.stderr
    # a 2-D teacher for 8x8 digits: refused before a single pair is drawn
    shape = run_ws_fm(
        [
            "fit",
            "--config",
            _config("digits", "reflow"),
            f"--model.init_args.teacher={toy_teacher}",
            "--model.init_args.init_from_teacher=false",
        ],
        tmp_path,
        ok=False,
    )
    assert (
        "the teacher makes samples of shape (2,) but the data has shape (1, 8, 8)" in shape.stderr
    )
    assert not (tmp_path / "runs/digits/teacher_banks").exists() or not any(
        (tmp_path / "runs/digits/teacher_banks").iterdir()
    )


def test_a_teacher_loaded_under_the_cli_keeps_its_own_hyperparameters(toy_teacher, tmp_path):
    """LightningCLI hands the model's hyperparameters to every LightningModule built while it
    instantiates the model; the teacher (and a draft) are loaded outside that context, so that
    ReFlow and distillation of one teacher fingerprint the same pairs (one bank, not two)."""
    from ws_fm.cli import WSFMCLI
    from ws_fm.data.sample_bank import generator_fingerprint

    fingerprints = []
    for name in ("reflow", "distill"):
        cli = WSFMCLI(
            run=False,
            args=[
                "--config",
                _config("toy", name),
                f"--model.init_args.teacher={toy_teacher}",
                f"--trainer.default_root_dir={tmp_path}",
            ],
        )
        assert "_class_path" not in cli.model.teacher.hparams  # not the student's
        assert cli.model.teacher.hparams["coupling"] == "independent"  # the teacher's own
        fingerprints.append(generator_fingerprint(cli.model.pair_source))
    assert fingerprints[0] == fingerprints[1]
