"""One warm refiner trained across t0 against one refiner per t0
(``make benchmark PROFILE=t0_range``).

On the toy profile's sets, draft, network, optimiser, EMA and step budget
(:data:`benchmarks.profiles.TOY`), per data set:

- one :class:`~ws_fm.refiners.T0ConditionedFlowMatching` over ``T0_RANGE``, trained once;
- one :class:`~ws_fm.refiners.WarmStartFlowMatching` per ``t0`` of ``T0S``, each trained with
  the same number of steps (so the fixed refiners cost ``len(T0S)`` times the training);

each scored at every ``t0`` of ``T0S`` at the same Euler step sizes (NFE
``ceil((1 - t0) / h)``) by sliced Wasserstein to the held-out points (seed 0).  Beside them, the
``t0`` read off the draft before training (:func:`ws_fm.calibrate_t0`) and off the conditioned
refiner's samples after training (:func:`ws_fm.calibrate_refined_t0`), and the toy profile's best
swept ``t0`` at parity from ``results/toy.json`` (another run, quoted as such).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import EMAWeightAveraging

from ws_fm.calibration import calibrate_refined_t0, calibrate_t0
from ws_fm.metrics import sliced_wasserstein
from ws_fm.nets import MLP
from ws_fm.refiners import T0ConditionedFlowMatching, WarmStartFlowMatching

from .common import WorkerPool, bench_trainer, quiet
from .engine import Profile

__all__ = ["RangeProfile", "range_profiles", "run_t0_range", "markdown", "write"]


@dataclass(frozen=True)
class RangeProfile:
    """What the comparison trains and scores; ``base`` gives the toy task and its budget."""

    name: str
    base: Profile
    t0_range: tuple[float, float] = (0.5, 0.95)
    t0s: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9)
    step_sizes: tuple[float, ...] = (0.05, 0.2)
    #: step size of the refined-sample calibration
    calibration_step_size: float = 0.05
    calibration_n: int = 2000
    workers: int = 2


def range_profiles() -> dict[str, RangeProfile]:
    from .profiles import PROFILES

    toy = PROFILES["toy"]
    smoke = replace(
        toy,
        task=replace(toy.task, sets=("moons",), n_train=2000),
        train_steps=30,
        n_eval=500,
    )
    return {
        "t0_range": RangeProfile("t0_range", toy),
        "t0_range-smoke": RangeProfile(
            "t0_range-smoke", smoke, t0s=(0.5, 0.9), calibration_n=300, workers=1
        ),
    }


def _train(rp: RangeProfile, dataset: str, t0: float | None) -> dict[str, Any]:
    """Train one refiner (``t0`` None: the conditioned one) and score it at every ``t0``."""
    torch.set_num_threads(1)
    quiet()
    p = rp.base
    torch.manual_seed(p.seed)
    task = p.task
    draft = task.draft(p, dataset, "gmm")
    net = MLP(dim=2, hidden=task.hidden, depth=task.depth, start_conditioned=t0 is None)
    kw: dict[str, Any] = dict(
        optimizer=lambda params: torch.optim.Adam(params, lr=p.lr),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, p.train_steps),
        coupling=p.sweep_couplings[0],
        **task.refiner_kwargs(p),
    )
    if t0 is None:
        model: WarmStartFlowMatching = T0ConditionedFlowMatching(
            net, draft, t0_range=rp.t0_range, t0=rp.t0s[0], **kw
        )
    else:
        model = WarmStartFlowMatching(net, draft, t0=t0, **kw)
    dm = task.datamodule(p, dataset)
    start = time.perf_counter()
    bench_trainer(p.train_steps, [EMAWeightAveraging(decay=p.ema_decay)]).fit(model, dm)
    seconds = time.perf_counter() - start
    model = model.eval()
    test = dm.test_data()
    scores = []
    for s in rp.t0s if t0 is None else (t0,):
        if t0 is None:
            model.set_t0(s)
        for h in rp.step_sizes:
            out = model.sample(p.n_eval, step_size=h, seed=p.seed)
            nfe = math.ceil(round((1 - s) / h, 9))
            assert out.nfe == nfe, (out.nfe, nfe)
            scores.append(
                {"t0": s, "step_size": h, "nfe": nfe, "sw": sliced_wasserstein(out.samples, test)}
            )
    res: dict[str, Any] = {
        "label": f"{dataset} {'t0 in ' + str(rp.t0_range) if t0 is None else f't0={t0}'}",
        "dataset": dataset,
        "t0": t0,
        "train_seconds": seconds,
        "scores": scores,
    }
    if t0 is None:
        train = dm.train_data()
        refined = calibrate_refined_t0(
            model, train, n=rp.calibration_n, step_size=rp.calibration_step_size, seed=p.seed
        )
        free = calibrate_t0(model.draft, train, n=rp.calibration_n, seed=p.seed)
        res["calibration"] = {
            "from_draft": free.t0,
            "from_draft_passed": free.passed,
            "from_refined_samples": refined.t0,
            "refined_curve": dict(zip(map(str, refined.grid), refined.distance)),
        }
    return res


def run_t0_range(rp: RangeProfile, progress: Any = None) -> dict[str, Any]:
    sets = rp.base.task.datasets()
    results = []
    with WorkerPool(rp.workers, progress, "refiners") as pool:
        for ds in sets:
            pool.submit(_train, rp, ds, None)
            for t0 in rp.t0s:
                pool.submit(_train, rp, ds, t0)
        results = list(pool.results())
    toy = Path(__file__).resolve().parent / "results" / "toy.json"
    swept = {}
    if toy.is_file():
        swept = {
            c["dataset"]: c["best_swept_t0"]
            for c in json.loads(toy.read_text()).get("calibrated_t0", [])
        }
    rows, calibration, seconds = [], [], {}
    for ds in sets:
        mine = [r for r in results if r["dataset"] == ds]
        cond = next(r for r in mine if r["t0"] is None)
        seconds[ds] = {
            "conditioned": cond["train_seconds"],
            "fixed, all t0": sum(r["train_seconds"] for r in mine if r["t0"] is not None),
        }
        for c in cond["scores"]:
            fixed = next(
                f
                for r in mine
                if r["t0"] == c["t0"]
                for f in r["scores"]
                if f["step_size"] == c["step_size"]
            )
            rows.append(
                {
                    "dataset": ds,
                    "t0": c["t0"],
                    "step_size": c["step_size"],
                    "nfe": c["nfe"],
                    "fixed": fixed["sw"],
                    "conditioned": c["sw"],
                    "ratio": c["sw"] / fixed["sw"],
                }
            )
        calibration.append(
            {"dataset": ds, **cond["calibration"], "toy_best_swept_t0": swept.get(ds)}
        )
    return {
        "profile": rp.name,
        "t0_range": list(rp.t0_range),
        "t0s": list(rp.t0s),
        "train_steps": rp.base.train_steps,
        "rows": rows,
        "calibration": calibration,
        "train_seconds": seconds,
    }


def markdown(report: dict[str, Any]) -> str:
    lo, hi = report["t0_range"]
    out = [
        f"# One warm refiner across t0 in [{lo}, {hi}] against one per t0 ({report['profile']})",
        "",
        f"`{report['command']}` · {report['date']} · {report['device']} · "
        f"{report['total_seconds'] / 60:.1f} min · {report['train_steps']} training steps per "
        "refiner · sliced Wasserstein to the held-out points, seed 0, lower is better",
        "",
        "| data set | t0 | step size | NFE | one refiner per t0 | one across t0 | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        out.append(
            f"| {r['dataset']} | {r['t0']:g} | {r['step_size']:g} | {r['nfe']} | "
            f"{r['fixed']:.4g} | {r['conditioned']:.4g} | {r['ratio']:.2f} |"
        )
    out += [
        "",
        "Training seconds: "
        + "; ".join(
            f"{ds} {s['conditioned']:.0f} s for the one across t0, {s['fixed, all t0']:.0f} s for "
            f"the {len(report['t0s'])} fixed"
            for ds, s in report["train_seconds"].items()
        ),
        "",
        "## t0 chosen",
        "",
        "| data set | from the draft (before training) | from the refined samples (after) | "
        "toy profile's best swept t0 at parity (results/toy.json) |",
        "|---|---|---|---|",
    ]
    for c in report["calibration"]:
        passed = "" if c["from_draft_passed"] else " (none passed)"
        out.append(
            f"| {c['dataset']} | {c['from_draft']:g}{passed} | {c['from_refined_samples']:g} | "
            f"{c['toy_best_swept_t0'] if c['toy_best_swept_t0'] is not None else '-'} |"
        )
    return "\n".join(out) + "\n"


def write(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = report["profile"]
    paths = [out_dir / f"{name}.json", out_dir / f"{name}.md"]
    for path, text in zip(paths, (json.dumps(report, indent=1), markdown(report))):
        tmp = path.with_suffix(path.suffix + ".tmp")  # whole files only: temporary, then rename
        tmp.write_text(text)
        tmp.replace(path)
    return paths
