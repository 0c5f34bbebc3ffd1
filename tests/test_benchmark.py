"""The benchmark runner end to end on its seconds-long smoke profile."""

import json

import pytest

from benchmarks.run import main

ROW_KEYS = {
    "dataset",
    "method",
    "t0",
    "coupling",
    "solver",
    "steps",
    "nfe",
    "quality",
    "seconds_per_1k",
    "draft_seconds_per_1k",
}
SPEEDUP_KEYS = {
    "dataset",
    "method",
    "t0",
    "coupling",
    "nfe",
    "quality",
    "guaranteed",
    "quality_matched",
    "wallclock",
    "at_parity",
}


@pytest.mark.timeout(300)
def test_smoke_profile_writes_results_in_the_shared_shape(tmp_path):
    assert main(["--profile", "toy-smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "toy-smoke.json").read_text())
    for key in (
        "profile",
        "command",
        "device",
        "torch",
        "date",
        "metric",
        "reference",
        "rows",
        "speedups",
    ):
        assert key in report
    assert report["metric"] == {"name": "sliced_wasserstein", "lower_is_better": True}
    assert all(ROW_KEYS <= set(r) for r in report["rows"])
    assert all(SPEEDUP_KEYS <= set(s) for s in report["speedups"])
    ref = report["reference"][0]
    assert ref["method"] == "cold_fm" and ref["solver"] == "euler" and ref["nfe"] == 8
    # Counted NFE: Euler rows cost their step count; warm rows at t0 = 0.8 guarantee 5x.
    assert all(r["nfe"] == r["steps"] for r in report["rows"] if r["solver"] == "euler")
    assert {s["guaranteed"] for s in report["speedups"]} == {5.0}
    assert all(s["wallclock"] > 0 for s in report["speedups"])
    assert (tmp_path / "toy-smoke.md").read_text().startswith("# Benchmark `toy-smoke`")
    assert (tmp_path / "toy-smoke.png").stat().st_size > 10_000
    with pytest.raises(SystemExit):
        main(["--profile", "nope"])


@pytest.mark.timeout(600)
def test_digits_smoke_profile_reports_drafts_fid_and_memorisation(tmp_path):
    assert main(["--profile", "digits-smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "digits-smoke.json").read_text())
    assert report["metric"] == {"name": "fid_classifier", "lower_is_better": True}
    warm = [r for r in report["rows"] if r["method"] == "ws_fm"]
    assert warm and all(r["draft"] == "gaussian" and r["nn_distance"] > 0 for r in warm)
    assert {s["guaranteed"] for s in report["speedups"]} == {5.0}
    assert report["real_nn_distance"] > 0 and report["classifier_test_accuracy"] > 0.9
    assert set(report["draft_only"]) == {"gaussian"}
    assert "| draft |" in (tmp_path / "digits-smoke.md").read_text()
