import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(300)
def test_warm_start_trains_under_ddp_with_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp.json"
    script = Path(__file__).with_name("ddp_toy_script.py")
    proc = subprocess.run(
        [sys.executable, str(script), str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["world_size"] == 2
    (p0, d0, b0, t0, s0), (p1, d1, b1, t1, s1) = res["per_rank"]
    assert p0 == pytest.approx(p1, rel=1e-6)  # DDP keeps the replicas in sync
    assert d0 == pytest.approx(d1, rel=1e-6)  # the draft is fitted identically on each rank
    assert b0 != b1  # each rank trains on its own shard of the data
    # Each rank draws its own training times (so its own noise) and its own samples: under
    # seed_everything alone both ranks drew the same (the effective batch held copies).
    assert t0 != t1 and s0 != s1
    assert res["val_loss"] > 0
