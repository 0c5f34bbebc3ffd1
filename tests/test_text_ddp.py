import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TEXTS = [
    "It is a truth universally acknowledged that a single man must be in want of a wife.",
    "She was the youngest of the two daughters of a most affectionate father.",
    "The family of Dashwood had long been settled in Sussex.",
    "Sir Walter Elliot never took up any book but the Baronetage.",
    "Emma Woodhouse, handsome, clever, and rich, had lived nearly twenty-one years.",
]


@pytest.mark.skipif(
    importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx is not installed"
)
@pytest.mark.timeout(600)
def test_text_training_and_perplexity_under_two_process_ddp(tmp_path):
    from ws_fm.metrics.text import TrigramPerplexity

    (tmp_path / "texts.json").write_text(json.dumps(TEXTS))
    out = tmp_path / "res.json"
    script = Path(__file__).with_name("ddp_text_script.py")
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(tmp_path / "texts.json"), str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=580,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(out.read_text())
    assert res["world_size"] == 2
    assert sorted(res["builds"]) == [0, 1]  # the teacher-forced bank is built once
    single = TrigramPerplexity()
    single.update(TEXTS)
    want = single.compute()
    # Each rank scored a different share; the synchronised result is the whole set's.
    assert res["perplexity"] == pytest.approx(float(want["perplexity"]), rel=1e-9)
    assert res["oov_rate"] == pytest.approx(float(want["oov_rate"]), rel=1e-9)
