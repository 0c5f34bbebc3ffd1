import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("config", ["toy/ws_fm.yaml", "toy/cold_fm.yaml"])
def test_fit_fast_dev_run(config, tmp_path):
    cmd = [
        str(BIN / "ws-fm"),
        "fit",
        "--config",
        str(ROOT / "lightning_configs" / config),
        "--trainer.fast_dev_run=true",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    out = subprocess.run(
        cmd,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "max_steps=1" in out.stdout + out.stderr


def test_fit_ddp_two_processes_with_ema_from_the_cli(tmp_path):
    # EMAWeightAveraging deep-copies the CLI-built module; its jsonargparse optimizer partials
    # held a lock on rank 0, which made this command fail before SharesFactoriesOnCopy.
    cmd = [
        str(BIN / "ws-fm"),
        "fit",
        "--config",
        str(ROOT / "lightning_configs/toy/ws_fm.yaml"),
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--trainer.max_steps=3",
        "--trainer.limit_val_batches=1",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "EMAWeightAveraging" in (ROOT / "lightning_configs/toy/ws_fm.yaml").read_text()


def test_lightning_entry_point_is_the_same_cli(tmp_path):
    out = subprocess.run(
        [str(BIN / "lightning"), "fit", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0
    assert "--config" in out.stdout and "--model" in out.stdout and "--data" in out.stdout


def test_bad_config_value_fails_before_training(tmp_path):
    cmd = [
        str(BIN / "ws-fm"),
        "fit",
        "--config",
        str(ROOT / "lightning_configs/toy/ws_fm.yaml"),
        "--model.init_args.t0=1.2",
        "--trainer.fast_dev_run=true",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "t0=1.2 is outside [0, 1)" in out.stderr


@pytest.mark.parametrize("subcommand", ["validate", "predict"])
def test_validate_and_predict_subcommands(subcommand, tmp_path):
    limit = (
        "--trainer.limit_val_batches=1"
        if subcommand == "validate"
        else "--trainer.limit_predict_batches=1"
    )
    cmd = [
        str(BIN / "ws-fm"),
        subcommand,
        "--config",
        str(ROOT / "lightning_configs/toy/cold_fm.yaml"),
        limit,
        f"--trainer.default_root_dir={tmp_path}",
        "--model.init_args.sample_steps=2",
    ]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


def test_custom_coupling_and_time_sampler_by_class_path(tmp_path):
    config = tmp_path / "custom.yaml"
    config.write_text(
        f"""
model:
  class_path: ws_fm.refiners.WarmStartFlowMatching
  init_args:
    coupling:
      class_path: custom_pieces.ReversedCoupling
      init_args: {{marker: {tmp_path / "coupled"}}}
    time_sampler:
      class_path: custom_pieces.FixedTime
      init_args: {{u: 0.25, marker: {tmp_path / "timed"}}}
"""
    )
    cmd = [
        str(BIN / "ws-fm"),
        "fit",
        "--config",
        str(ROOT / "lightning_configs/toy/ws_fm.yaml"),
        "--config",
        str(config),
        "--trainer.fast_dev_run=true",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "coupled").exists() and (tmp_path / "timed").read_text() == "0.25"
