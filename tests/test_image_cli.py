import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_ws_fm

ROOT = Path(__file__).resolve().parents[1]
WS_FM = str(Path(sys.executable).parent / "ws-fm")


def _run(args, cwd, cache):
    return run_ws_fm(args, cwd, cache)


@pytest.mark.parametrize("name", ["draft_vae", "draft_gan"])
def test_draft_configs_fast_dev_run(name, tmp_path):
    _run(
        [
            "fit",
            "--config",
            str(ROOT / f"lightning_configs/digits/{name}.yaml"),
            "--trainer.fast_dev_run=true",
        ],
        tmp_path,
        tmp_path / "cache",
    )


@pytest.mark.timeout(900)
def test_two_stage_draft_then_warm_refiner(tmp_path):
    # Stage 1 as written in the README: the Gaussian draft writes runs/digits/draft_gaussian/draft.ckpt.
    _run(
        ["fit", "--config", str(ROOT / "lightning_configs/digits/draft_gaussian.yaml")],
        tmp_path,
        tmp_path / "cache",
    )
    assert (tmp_path / "runs/digits/draft_gaussian/draft.ckpt").is_file()
    # Stage 2: the refiner pointing at that checkpoint, one fast step with every callback.
    _run(
        [
            "fit",
            "--config",
            str(ROOT / "lightning_configs/digits/ws_fm.yaml"),
            "--trainer.fast_dev_run=true",
        ],
        tmp_path,
        tmp_path / "cache",
    )
    assert list((tmp_path / "runs/digits/draft_banks").iterdir())
    _run(
        [
            "fit",
            "--config",
            str(ROOT / "lightning_configs/digits/cold_fm.yaml"),
            "--trainer.fast_dev_run=true",
        ],
        tmp_path,
        tmp_path / "cache",
    )


def test_missing_draft_checkpoint_fails_before_training(tmp_path):
    out = subprocess.run(
        [
            WS_FM,
            "fit",
            "--config",
            str(ROOT / "lightning_configs/digits/ws_fm.yaml"),
            "--trainer.fast_dev_run=true",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0
    assert "does not exist: train the draft first" in out.stderr
