"""The structured-text configs through the CLI, and ValidityCallback under two-process DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_ws_fm

ROOT = Path(__file__).resolve().parents[1]


def _config(name):
    return ["--config", str(ROOT / f"lightning_configs/structured/{name}.yaml")]


@pytest.mark.timeout(600)
def test_structured_configs_fit_through_the_cli(tmp_path):
    run_ws_fm(["fit", *_config("draft_ngram")], tmp_path)
    assert (tmp_path / "runs/structured/draft_ngram/draft.ckpt").is_file()
    run_ws_fm(
        [
            "fit",
            *_config("ws_dfm"),
            "--trainer.max_steps=4",
            "--trainer.val_check_interval=4",
            "--data.init_args.bank_size=512",
        ],
        tmp_path,
    )
    logs = tmp_path / "runs/structured/ws_dfm/lightning_logs/version_0"
    metrics = (logs / "metrics.csv").read_text()
    assert "val/valid" in metrics and "val/constraints" in metrics
    samples = (logs / "samples.txt").read_text()
    assert "# step 4" in samples and " | " in samples
    assert (tmp_path / "runs/structured/ws_dfm/checkpoints/last.ckpt").is_file()
    run_ws_fm(["fit", *_config("cold_dfm"), "--trainer.fast_dev_run=true"], tmp_path)
    run_ws_fm(["fit", *_config("draft_lstm"), "--trainer.fast_dev_run=true"], tmp_path)


def test_structured_draft_of_another_length_is_refused(tmp_path):
    run_ws_fm(["fit", *_config("draft_ngram")], tmp_path)
    out = run_ws_fm(
        [
            "fit",
            *_config("ws_dfm"),
            "--trainer.fast_dev_run=true",
            "--data.init_args.data.init_args.half_len=6",
        ],
        tmp_path,
        ok=False,
    )
    assert out.returncode != 0
    assert "shape" in out.stderr


@pytest.mark.timeout(600)
def test_validity_callback_under_two_process_ddp(tmp_path):
    out = tmp_path / "res.json"
    script = Path(__file__).with_name("ddp_structured_script.py")
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=580,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(out.read_text())
    assert res["world_size"] == 2
    # each rank drew its own samples (a rank-specific seed), and the logged value is the mean of
    # the two ranks' own scores (equal sample counts)
    assert res["first_samples"][0] != res["first_samples"][1]
    per_rank = res["per_rank"]
    for i in range(2):
        assert res["logged"][i] == pytest.approx((per_rank[0][i] + per_rank[1][i]) / 2, abs=1e-6)
