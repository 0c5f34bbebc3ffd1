"""Exact minibatch-OT solvers on the profiles' batch shapes, and the coupling's share of a
training step (``python -m benchmarks.run --profile ot_solvers``).

For each case (data set, batch size, dimension) it times every exact solver of
:data:`ws_fm.couplings.OT_SOLVERS` on the same cost matrices (median of ``repeats`` batches,
one process, one run), checks that they reach the same optimal cost, and reports the ratio to the
fastest.  It then times one OT-CFM training step (forward, backward, Adam) on the toy profile's
network against the same step with independent pairs, so the coupling's share of a step is
measured rather than assumed.  The default solver of ``MinibatchOTCoupling`` should be the
fastest exact one on these shapes.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from ws_fm.couplings import OT_SOLVERS, MinibatchOTCoupling, assignment_cost, optimal_assignment
from ws_fm.data import ImageDataModule, make_toy
from ws_fm.nets import MLP
from ws_fm.refiners import FlowMatching

__all__ = ["run_ot_solvers", "markdown"]


def _cases(seed: int) -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(seed)
    toy = make_toy("checkerboard", 4096, seed=seed)
    digits = ImageDataModule("digits").train_data()
    cases = []
    for b in (256, 512):  # the toy profile's batch, and the toy configs'
        cases.append(
            ("checkerboard, noise -> data", b, toy, lambda n: torch.randn(n, 2, generator=g))
        )
    cases.append(
        ("digits 8x8, noise -> data", 128, digits, lambda n: torch.randn(n, 1, 8, 8, generator=g))
    )
    for d in (8, 32, 48):  # where the solvers cross over: clustered data of growing dimension
        centres = torch.randn(8, d, generator=g) * 3
        mix = centres[torch.randint(8, (4096,), generator=g)] + 0.3 * torch.randn(
            4096, d, generator=g
        )
        cases.append(
            (
                f"8-cluster mixture, d={d}, noise -> data",
                256,
                mix,
                lambda n, d=d: torch.randn(n, d, generator=g),
            )
        )
    fashion = torch.rand(2048, 1, 28, 28, generator=g) * 2 - 1  # the shape of Fashion-MNIST
    for b in (64, 256):  # the fashion_mnist CPU and GPU profiles' batches
        cases.append(
            (
                "28x28 images, noise -> images",
                b,
                fashion,
                lambda n: torch.randn(n, 1, 28, 28, generator=g),
            )
        )
    tokens = torch.randint(0, 4000, (4096, 32), generator=g)
    cases.append(
        (
            "tokens (L=32, Hamming), draft -> data",
            64,
            tokens,
            lambda n: torch.randint(0, 4000, (n, 32), generator=g),
        )
    )
    return [{"case": name, "batch": b, "data": data, "source": src} for name, b, data, src in cases]


def _time_solvers(case: dict[str, Any], repeats: int, g: torch.Generator) -> dict[str, Any]:
    times: dict[str, list[float]] = {s: [] for s in OT_SOLVERS}
    auto = MinibatchOTCoupling("auto")  # what the default picks on the same batches
    agree = True
    for _ in range(repeats):
        idx = torch.randint(len(case["data"]), (case["batch"],), generator=g)
        x1, src = case["data"][idx], case["source"](case["batch"])
        cost = assignment_cost(src, x1)
        totals = []
        for solver in OT_SOLVERS:
            start = time.perf_counter()
            perm = optimal_assignment(src, x1, solver)
            times[solver].append(time.perf_counter() - start)
            totals.append(float(cost[torch.arange(len(perm)), perm].double().sum()))
        auto(src, x1)
        agree &= max(totals) - min(totals) <= 1e-6 * max(1.0, abs(totals[0]))
    med = {s: statistics.median(v) * 1e3 for s, v in times.items()}
    fastest = min(med, key=med.get)
    return {
        "case": case["case"],
        "batch": case["batch"],
        "dim": int(case["data"][0].numel()),
        "median_ms": med,
        "ratio_to_fastest": {s: med[s] / med[fastest] for s in med},
        "fastest": fastest,
        "auto": auto.chosen,
        "same_optimal_cost": agree,
    }


def _step_share(repeats: int, batch: int = 256) -> dict[str, Any]:
    """One training step on the toy profile's network with each coupling (best of repeats)."""
    data = make_toy("checkerboard", 4096, seed=0)
    out: dict[str, float] = {}
    for coupling in ("independent", *(f"minibatch_ot:{s}" for s in (*OT_SOLVERS, "auto"))):
        name, _, solver = coupling.partition(":")
        c = MinibatchOTCoupling(solver) if solver else name
        torch.manual_seed(0)
        model = FlowMatching(MLP(hidden=256, depth=3), coupling=c, sample_shape=(2,))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        best = float("inf")
        for i in range(repeats + 2):
            x1 = data[torch.randint(len(data), (batch,))]
            start = time.perf_counter()
            loss = model.flow_matching_loss(x1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i >= 2:  # warm-up steps excluded
                best = min(best, time.perf_counter() - start)
        out[coupling] = best * 1e3
    return {
        "batch": batch,
        "step_ms": out,
        "ot_step_over_independent": {
            k: v / out["independent"] for k, v in out.items() if k != "independent"
        },
    }


def run_ot_solvers(repeats: int = 20, seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed + 1)
    return {
        "solvers": [_time_solvers(c, repeats, g) for c in _cases(seed)],
        "training_step": _step_share(repeats),
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
    }


def markdown(report: dict[str, Any]) -> str:
    solvers = list(OT_SOLVERS)
    lines = [
        "# Exact minibatch-OT solvers",
        "",
        f"`{report['command']}` on {report['device']}, {report['date']}; median of "
        f"{report['repeats']} batches per case, every solver on the same cost matrices in one "
        "run. Ratios are to the fastest solver of the row (1.00 = fastest).",
        "",
        "| case | batch | dim | "
        + " | ".join(f"{s} (ms)" for s in solvers)
        + " | "
        + " | ".join(f"{s} / fastest" for s in solvers)
        + " | same optimal cost | auto picks |",
        "|---|---|---|" + "---|" * (2 * len(solvers)) + "---|---|",
    ]
    for r in report["solvers"]:
        lines.append(
            f"| {r['case']} | {r['batch']} | {r['dim']} | "
            + " | ".join(f"{r['median_ms'][s]:.2f}" for s in solvers)
            + " | "
            + " | ".join(f"{r['ratio_to_fastest'][s]:.2f}" for s in solvers)
            + f" | {'yes' if r['same_optimal_cost'] else 'NO'} | {r['auto']} |"
        )
    step = report["training_step"]
    lines += [
        "",
        f"One OT-CFM training step on the toy profile's network (3x256 MLP, checkerboard, "
        f"batch {step['batch']}; best of {report['repeats']}), against the same step with "
        "independent pairs:",
        "",
        "| coupling | step (ms) | / independent |",
        "|---|---|---|",
        f"| independent | {step['step_ms']['independent']:.2f} | 1.00 |",
    ]
    for k, ratio in step["ot_step_over_independent"].items():
        lines.append(f"| {k} | {step['step_ms'][k]:.2f} | {ratio:.2f} |")
    wins = [r["fastest"] for r in report["solvers"]]
    lines += [
        "",
        "Fastest per case: "
        + ", ".join(f"{s} {wins.count(s)}" for s in solvers)
        + ". `MinibatchOTCoupling`'s default, `auto`, times both solvers on its first batches "
        "of real-valued data and keeps the faster (scipy for tokens, whose integer costs have "
        "ties); *auto picks* is what it chose on the same batches.",
        "",
    ]
    return "\n".join(lines)


def write(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    j, m = out_dir / "ot_solvers.json", out_dir / "ot_solvers.md"
    j.write_text(json.dumps(report, indent=1))
    m.write_text(markdown(report))
    return [j, m]
