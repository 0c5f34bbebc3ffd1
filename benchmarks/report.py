"""Turns measured rows into ``benchmarks/results/<profile>.{json,md,png}`` and a rich table.

The JSON shape (shared by every profile)::

    {"profile", "command", "device", "torch", "date",
     "metric": {"name", "lower_is_better"},
     "reference": [{"dataset", "method", "coupling", "solver", "nfe", "quality", "dopri5"}],
     "rows": [{"dataset", "method", "t0", "coupling", "solver", "steps", "nfe", "quality",
               "seconds_per_1k", "draft_seconds_per_1k"}],
     "speedups": [{"dataset", "method", "t0", "coupling", "nfe", "quality",
                   "guaranteed", "quality_matched", "quality_matched_lower_bound",
                   "wallclock", "at_parity"}]}

``reference`` holds one entry per data set: the better cold flow (over its couplings) with Euler
at the reference step count, with its dopri5 result beside it.  Speed-ups follow docs/design.md §2
(:mod:`ws_fm.speedup`); ``nfe_cold(Q)`` uses the best cold flow at each NFE of the grid.
"""

from __future__ import annotations

import json
import os
import platform
from collections import defaultdict
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ws_fm.speedup import (
    PARITY_TOLERANCE,
    better,
    guaranteed_speedup,
    quality_matched_speedup,
    wallclock_speedup,
    within,
)

from .common import coupling_label

__all__ = [
    "device_name",
    "build_report",
    "write_report",
    "write_sample_grids",
    "operating_points",
    "method_summary",
    "rich_table",
    "rich_methods_table",
]


def device_name() -> str:
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    # ``draft`` names the draft model where a profile compares several (images); "" otherwise.
    return (
        r["dataset"],
        r["method"],
        r["t0"],
        r["coupling"],
        r.get("draft", ""),
        r.get("sampler", ""),
    )


def _mean(r: dict[str, Any]) -> float:
    return r.get("quality_mean", r["quality"])


def _seed_fields(r: dict[str, Any]) -> dict[str, Any]:
    if "n_seeds" not in r:
        return {"quality_mean": r["quality"], "quality_sem": None, "n_seeds": 1}
    out = {k: r[k] for k in ("quality_mean", "quality_sem", "n_seeds")}
    flags = {k: True for k in ("screened_out", "not_judged") if r.get(k)}
    return {**out, **flags}


def _at_parity(r: dict[str, Any], ref: dict[str, Any], lib: bool) -> bool | None:
    """Within the parity band of the reference, on seed means where both have them (a row
    screened out by ``seed_statistics`` is far beyond the band on its one draw; None: not
    judged, a cheaper NFE of the same setting is at parity)."""
    if r.get("not_judged"):
        return None
    if r.get("screened_out"):
        return False
    return within(_mean(r), _mean(ref), PARITY_TOLERANCE, lib)


def build_report(
    rows: list[dict[str, Any]],
    *,
    profile: str,
    command: str,
    date: str,
    metric: str,
    lower_is_better: bool,
    nfe_grid: Iterable[int],
    reference_steps: int,
    cold_method: str,
    warm_method: str,
    cold_nfe_at_equal_step: dict[tuple[float, int], int],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    grid = set(nfe_grid)
    lib = lower_is_better
    euler = [r for r in rows if r["solver"] == "euler"]
    reference: list[dict[str, Any]] = []
    speedups: list[dict[str, Any]] = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        cold = [r for r in euler if r["dataset"] == ds and r["method"] == cold_method]
        refs = [r for r in cold if r["steps"] == reference_steps]
        ref = refs[0]
        for r in refs[1:]:
            ref = r if better(_mean(r), _mean(ref), lib) else ref
        dopri = next(
            (
                r
                for r in rows
                if r["dataset"] == ds
                and r["method"] == cold_method
                and r["coupling"] == ref["coupling"]
                and r["solver"] == "dopri5"
            ),
            None,
        )
        reference.append(
            {
                "dataset": ds,
                "method": cold_method,
                "coupling": ref["coupling"],
                "solver": "euler",
                "nfe": ref["nfe"],
                "quality": ref["quality"],
                **_seed_fields(ref),
                "seconds_per_1k": ref["seconds_per_1k"],
                "dopri5": {"nfe": dopri["nfe"], "quality": dopri["quality"]} if dopri else None,
            }
        )
        # The best cold flow at each NFE of the grid: the strongest cold competitor.
        best_cold: dict[int, float] = {}
        for r in cold:
            if r["nfe"] in grid and (
                r["nfe"] not in best_cold or better(r["quality"], best_cold[r["nfe"]], lib)
            ):
                best_cold[r["nfe"]] = r["quality"]
        curve = sorted(best_cold.items())
        for r in euler:
            if r["dataset"] != ds or r["method"] != warm_method:
                continue
            m = quality_matched_speedup(curve, r["nfe"], r["quality"], lib)
            speedups.append(
                {
                    "dataset": ds,
                    "method": warm_method,
                    "t0": r["t0"],
                    "coupling": r["coupling"],
                    **({"draft": r["draft"]} if "draft" in r else {}),
                    **({"sampler": r["sampler"]} if r.get("sampler") else {}),
                    "steps": r["steps"],
                    "nfe": r["nfe"],
                    "quality": r["quality"],
                    **_seed_fields(r),
                    "guaranteed": guaranteed_speedup(
                        cold_nfe_at_equal_step[(r["t0"], r["steps"])], r["nfe"]
                    ),
                    "quality_matched": m.value,
                    "quality_matched_lower_bound": m.lower_bound,
                    "wallclock": wallclock_speedup(
                        ref["seconds_per_1k"], r["seconds_per_1k"], r["draft_seconds_per_1k"]
                    ),
                    "at_parity": _at_parity(r, ref, lib),
                }
            )
    methods = method_summary(rows, reference, cold_method, warm_method, lower_is_better)
    return {
        "methods": methods,
        "calibrated_t0": calibrated_t0((extra or {}).get("calibrations", []), methods, warm_method),
        "profile": profile,
        "command": command,
        "device": device_name(),
        "torch": torch.__version__,
        "date": date,
        "metric": {"name": metric, "lower_is_better": lower_is_better},
        "reference": reference,
        "rows": rows,
        "speedups": speedups,
        **(extra or {}),
    }


def calibrated_t0(
    calibrations: list[dict[str, Any]], methods: list[dict[str, Any]], warm_method: str
) -> list[dict[str, Any]]:
    """Per draft: the t0 that ``calibrate_t0`` chose before training beside the best swept t0
    (the warm start's headline setting for that draft: fewest NFE at parity, else best)."""
    best = {(e["dataset"], e["draft"]): e["t0"] for e in methods if e["method"] == warm_method}
    return [
        {
            "dataset": c["dataset"],
            "draft": c["draft"],
            "t0": c["t0"],
            "passed": c.get("passed", True),
            "best_swept_t0": best.get((c["dataset"], c["draft"])),
        }
        for c in calibrations
    ]


def _calibration_lines(report: dict[str, Any]) -> list[str]:
    entries = report.get("calibrated_t0") or []
    if not entries:
        return []
    swept = sorted({r["t0"] for r in report["rows"] if r.get("draft")})
    # one grid step: the widest gap between neighbouring swept t0 (0.1 with a single t0)
    step = max((b - a for a, b in zip(swept, swept[1:])), default=0.1)
    lines = [
        "",
        "## t0 from the draft",
        "",
        "`calibrate_t0` (before any refiner trains): the largest t0 up to which the draft's warm "
        "start point and the cold path's state stay within 1 + tolerance of the real-vs-real "
        "noise floor; beside it the t0 of the warm start's best setting for that draft (fewest "
        f"NFE at parity, else best quality) on the swept grid {', '.join(f'{t:g}' for t in swept)}. "
        "Curves in the results JSON (`calibrations`); *none passed*: the draft's start point "
        "is told apart from the cold path's state at every grid t0 (the smallest is shown).",
        "",
        "| dataset | draft | calibrated t0 | best swept t0 | within one grid step |",
        "|---|---|---|---|---|",
    ]
    for e in entries:
        best = e["best_swept_t0"]
        near = "-"
        if best is not None:
            near = "yes" if abs(e["t0"] - best) <= step + 1e-9 else "no"
        chosen = f"{e['t0']:g}" + ("" if e.get("passed", True) else " (none passed)")
        lines.append(
            f"| {e['dataset']} | {e['draft']} | {chosen} | "
            f"{'-' if best is None else f'{best:g}'} | {near} |"
        )
    return lines


def _fewest_at_parity(group: list[dict[str, Any]], ref: dict[str, Any], lib: bool) -> Any:
    """The cheapest row of one setting at parity with ``ref`` (on seed means), or None.  Where
    the profile resampled seeds, only rows judged on them count (a cold flow's rows above the
    reference budget, say, were never resampled)."""
    if any("quality_mean" in r for r in group):
        group = [r for r in group if "quality_mean" in r]
    parity = [r for r in group if _at_parity(r, ref, lib)]
    return min(parity, key=lambda r: r["nfe"]) if parity else None


def _rank(group: list[dict[str, Any]], ref: dict[str, Any], lib: bool) -> tuple[float, float]:
    """Order of a method's settings: fewest NFE at parity, then best mean quality."""
    point = _fewest_at_parity(group, ref, lib)
    best = min(_mean(r) if lib else -_mean(r) for r in group)
    return (point["nfe"] if point else float("inf"), best)


def method_summary(
    rows: list[dict[str, Any]],
    reference: list[dict[str, Any]],
    cold_method: str,
    warm_method: str,
    lower_is_better: bool,
) -> list[dict[str, Any]]:
    """The headline: per data set and method (cold flow per coupling, warm start and warm
    students per draft at their best setting, each peer), the fewest Euler NFE at parity with the reference (on seed
    means), the quality at 1 and 2 NFE, the sampling seconds per 1,000 samples at that point
    (drafts included) and the training cost (a peer's beyond its teacher: the teacher pairs'
    network evaluations and seconds, and its own training seconds)."""
    lib = lower_is_better
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["solver"] == "euler":
            groups[_key(r)].append(r)
    out: list[dict[str, Any]] = []
    for ref in reference:
        ds = ref["dataset"]
        # per entry (the warm start: per draft) its candidate settings
        entries: dict[tuple[str, str], list[list[dict[str, Any]]]] = defaultdict(list)
        for key, group in groups.items():
            if key[0] != ds:
                continue
            method, coupling, draft = key[1], key[3], key[4]
            # the warm start and the warm students per draft, the others per coupling
            entry = (method, draft) if draft else (method, coupling)
            entries[entry].append(sorted(group, key=lambda r: r["nfe"]))
        for (method, _), settings in entries.items():
            group = min(settings, key=partial(_rank, ref=ref, lib=lib))
            point = _fewest_at_parity(group, ref, lib)
            by_nfe = {r["nfe"]: r for r in group}
            shown = point or by_nfe.get(1) or group[0]
            first = group[0]
            out.append(
                {
                    "dataset": ds,
                    "method": method,
                    "draft": first.get("draft", ""),
                    "t0": first["t0"],
                    "coupling": first["coupling"],
                    **({"sampler": first["sampler"]} if first.get("sampler") else {}),
                    "nfe_at_parity": point["nfe"] if point else None,
                    "quality_at_parity": _mean(point) if point else None,
                    "quality_1": by_nfe[1]["quality"] if 1 in by_nfe else None,
                    "quality_2": by_nfe[2]["quality"] if 2 in by_nfe else None,
                    "best_nfe": shown["nfe"],
                    "seconds_per_1k": shown["seconds_per_1k"]
                    + shown.get("draft_seconds_per_1k", 0.0),
                    "train_seconds": first.get("train_seconds"),
                    "pair_teacher_nfe": first.get("pair_teacher_nfe"),
                    "pair_seconds": first.get("pair_seconds"),
                    "teacher": first.get("teacher"),
                }
            )
    return out


def _rank_key(e: dict[str, Any], lower_is_better: bool) -> tuple[Any, ...]:
    """Methods at parity first, by fewest NFE then quality there (the seed mean); the others by
    their 1-NFE quality."""
    sign = 1 if lower_is_better else -1
    if e["nfe_at_parity"]:
        return (0, e["nfe_at_parity"], sign * e["quality_at_parity"])
    q = e["quality_1"]
    if q is None or q != q:
        return (2, 0)
    return (1, q if lower_is_better else -q)


def _method_lines(report: dict[str, Any]) -> list[str]:
    entries = report.get("methods") or []
    if not entries:
        return []
    lib = report["metric"]["lower_is_better"]
    lines = [
        "## Every method against the reference",
        "",
        "Per data set, every method ranked: first those at parity with the cold reference (next"
        " section), by their fewest Euler NFE at parity (within 5% of the reference's quality, "
        "on the means over sampling seeds; the warm start at its best setting per draft) and "
        "their quality there, then the others by their quality at 1 NFE. Beside it the quality "
        "at 1 and 2 NFE (seed 0), the sampling seconds per 1,000 samples at that NFE (at 1 NFE "
        "where none is at parity; drafts included), and the training cost beyond the teacher: "
        "training seconds, and for the methods taught by a teacher (the peers by the cold flow,"
        " the warm students ws_reflow and ws_distill by the warm refiner of their draft) the "
        "teacher's network evaluations and seconds spent on the pairs they train on (ReFlow and"
        " distillation share one bank: each row counts it; FGM evaluates its teacher during "
        "training instead). Training seconds come from parallel workers (one thread each), pair"
        " seconds from the main process beside them.",
        "",
        "| dataset | rank | method | setting | fewest NFE at parity (mean) | quality @1 NFE | "
        "quality @2 NFE | s / 1k samples | train s | teacher NFE on pairs | pair s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ranked: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        ranked[e["dataset"]].append(e)
    for group in ranked.values():
        group.sort(key=lambda e: _rank_key(e, lib))
    for e, rank in ((e, i + 1) for group in ranked.values() for i, e in enumerate(group)):
        setting = coupling_label(e)
        if e.get("teacher"):  # a peer (cold teacher) or a warm student (its draft's refiner)
            setting = f"{coupling_label(e)}, teacher {e['teacher']}"
        if e["draft"]:
            setting = f"{e['draft']}, t0={e['t0']:g}, " + setting
        parity = (
            f"{e['nfe_at_parity']} ({_fmt(e['quality_at_parity'])})"
            if e["nfe_at_parity"]
            else "none"
        )
        pair_nfe = e.get("pair_teacher_nfe")
        lines.append(
            f"| {e['dataset']} | {rank} | {e['method']} | {setting} | {parity} | "
            f"{_fmt(e['quality_1'])} | "
            f"{_fmt(e['quality_2'])} | {_fmt(e['seconds_per_1k'])} ({e['best_nfe']} NFE) | "
            f"{_fmt(e['train_seconds'])} | "
            + (f"{pair_nfe:,}" if pair_nfe else "-")
            + f" | {_fmt(e.get('pair_seconds') or None)} |"
        )
    return lines + [""]


def operating_points(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per warm setting, the cheapest NFE at parity, else its best-quality point."""
    lib = report["metric"]["lower_is_better"]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for s in report["speedups"]:
        groups[_key(s)].append(s)
    out = []
    for pts in groups.values():
        parity = [s for s in pts if s["at_parity"]]
        if parity:
            out.append(min(parity, key=lambda s: s["nfe"]))
        else:
            best = pts[0]
            for s in pts[1:]:
                best = s if better(s["quality"], best["quality"], lib) else best
            out.append(best)
    return out


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def _mean_cell(s: dict[str, Any]) -> str:
    n = s.get("n_seeds", 1)
    if n <= 1:
        return "screened out" if s.get("screened_out") else "-"
    return f"{_fmt(s['quality_mean'])} ± {_fmt(s['quality_sem'], 2)} ({n})"


def _speedup_line(s: dict[str, Any], with_draft: bool = False) -> list[str]:
    qm = ("≥" if s["quality_matched_lower_bound"] else "") + _fmt(s["quality_matched"])
    return [
        s["dataset"],
        *([s.get("draft", "")] if with_draft else []),
        f"{s['t0']:g}",
        coupling_label(s),
        str(s["nfe"]),
        _fmt(s["quality"]),
        _mean_cell(s),
        _fmt(s["guaranteed"]),
        qm,
        _fmt(s["wallclock"]),
        {True: "yes", False: "no", None: "-"}[s["at_parity"]],
    ]


def _header(with_draft: bool) -> list[str]:
    return [
        "dataset",
        *(["draft"] if with_draft else []),
        "t0",
        "coupling",
        "NFE",
        "quality (seed 0)",
        "mean ± sem (seeds)",
        "guaranteed",
        "quality-matched",
        "wall-clock",
        "at parity",
    ]


def _has_drafts(report: dict[str, Any]) -> bool:
    return any("draft" in r for r in report["rows"])


def markdown(report: dict[str, Any]) -> str:
    m = report["metric"]
    wd = _has_drafts(report)
    lines = [
        f"# Benchmark `{report['profile']}`",
        "",
        f"- command: `{report['command']}`",
        f"- device: {report['device']}; torch {report['torch']}; date {report['date']}"
        + (
            f"; training precision {report['training_precision']}"
            if report.get("training_precision")
            else ""
        ),
        f"- quality: {m['name']} ({'lower' if m['lower_is_better'] else 'higher'} is better)",
        "",
        *_method_lines(report),
        "## Reference (best cold flow, Euler)",
        "",
        "| dataset | coupling | NFE | quality (seed 0) | mean ± sem (seeds) | dopri5 NFE | "
        "dopri5 quality | real vs real |",
        "|---|---|---|---|---|---|---|---|",
    ]
    floors = report.get("real_vs_real", {})
    for r in report["reference"]:
        d = r["dopri5"] or {}
        lines.append(
            f"| {r['dataset']} | {coupling_label(r)} | {r['nfe']} | {_fmt(r['quality'])} | "
            f"{_mean_cell(r)} | {d.get('nfe', '-')} | {_fmt(d.get('quality'))} | {_fmt(floors.get(r['dataset']))} |"
        )
    lines += [
        "",
        "## Warm start: operating points",
        "",
        'Per setting, the cheapest Euler NFE within 5% of the reference quality ("at parity"), '
        "judged on the means over sampling seeds (the reference's too; *screened out*: seed-0 "
        "quality more than the band plus three of the reference's per-seed standard deviations "
        "away, so not resampled and not at parity; -: not judged, a cheaper NFE of the setting is "
        "at parity); where no NFE reaches parity, the setting's best point. *guaranteed* = counted cold NFE at "
        "the same step size / warm NFE; *quality-matched* = NFE the best cold flow needs on its grid "
        "for the same quality / warm NFE (≥: no cold grid point reaches it, so 128 / NFE is a lower "
        "bound); *wall-clock* = reference time / (draft + refine time).",
        "",
        "| " + " | ".join(_header(wd)) + " |",
        "|" + "---|" * len(_header(wd)),
    ]
    lines += ["| " + " | ".join(_speedup_line(s, wd)) + " |" for s in operating_points(report)]
    lines += ["", "## Quality against NFE (Euler; dopri5 with its counted NFE)", ""]
    grid = sorted({r["steps"] for r in report["rows"] if r["solver"] == "euler"})
    lines += [
        "| dataset | method | t0 | coupling | draft | "
        + " | ".join(map(str, grid))
        + " | dopri5 (NFE) |",
        "|" + "---|" * (len(grid) + 6),
    ]
    table: dict[tuple[Any, ...], dict[Any, str]] = defaultdict(dict)
    for r in report["rows"]:
        col = r["steps"] if r["solver"] == "euler" else "dopri5"
        table[_key(r)][col] = _fmt(r["quality"]) + (f" ({r['nfe']})" if col == "dopri5" else "")
    for k, cols in table.items():
        lines.append(
            f"| {k[0]} | {k[1]} | {k[2]:g} | {k[3]} | {k[4] or '-'} | "
            + " | ".join(cols.get(s, "-") for s in grid)
            + f" | {cols.get('dopri5', '-')} |"
        )
    return (
        "\n".join(
            lines
            + _calibration_lines(report)
            + _seed_section(report)
            + _image_extras(report)
            + _text_extras(report)
            + _structured_extras(report)
        )
        + "\n"
    )


_TEXT_METRICS = ("quality", "perplexity", "oov_rate", "distinct_2", "entropy", "draft_kept")

# Issue 4's text target: warm start at t0 >= 0.8 within 5% of the reference Fréchet distance and
# 10% of its perplexity, with distinct-2 no lower, at >= 5x fewer NFE.
TEXT_TARGET = {"min_t0": 0.8, "frechet": 1.05, "perplexity": 1.10, "nfe_factor": 5}


def _meets_text_target(r: dict[str, Any], ref: dict[str, Any]) -> bool:
    return (
        r["quality"] <= TEXT_TARGET["frechet"] * ref["quality"]
        and r["perplexity"] <= TEXT_TARGET["perplexity"] * ref["perplexity"]
        and r["distinct_2"] >= ref["distinct_2"]
    )


def _text_target(report: dict[str, Any], ref: dict[str, Any]) -> list[str]:
    """Per warm setting at t0 >= 0.8: the cheapest NFE (<= reference NFE / 5) that meets every
    part of the target, else the best such point and by how much it misses; the drafts alone
    for scale."""
    budget = ref["nfe"] / TEXT_TARGET["nfe_factor"]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in report["rows"]:
        if r.get("draft") and r["t0"] >= TEXT_TARGET["min_t0"] and r["nfe"] <= budget:
            groups[_key(r)].append(r)
    lines = [
        "",
        "## Text target",
        "",
        f"Warm start at t0 ≥ {TEXT_TARGET['min_t0']:g} against the reference "
        f"({ref['method']}, {ref['nfe']} NFE): Fréchet ≤ {TEXT_TARGET['frechet']:g}x and "
        f"perplexity ≤ {TEXT_TARGET['perplexity']:g}x the reference's, distinct-2 ≥ the "
        f"reference's ({_fmt(ref['distinct_2'])}), at ≤ {budget:g} NFE. Per setting the cheapest "
        "NFE that meets all three, else the point with the best Fréchet distance. The drafts "
        "alone (no refiner, 0 NFE) are measured against the same reference for scale.",
        "",
        "| text | NFE | NFE speed-up | Fréchet / ref | perplexity / ref | distinct-2 | "
        "draft kept | target met |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def line(label: str, r: dict[str, Any], nfe: int) -> str:
        speed = f"{ref['nfe'] / nfe:g}x" if nfe else "-"
        return (
            f"| {label} | {nfe} | {speed} | {r['quality'] / ref['quality']:.3f} | "
            f"{r['perplexity'] / ref['perplexity']:.3f} | {_fmt(r['distinct_2'])} | "
            f"{_fmt(r.get('draft_kept'))} | {'yes' if _meets_text_target(r, ref) else 'no'} |"
        )

    for k, rows in groups.items():
        met = [r for r in rows if _meets_text_target(r, ref)]
        r = min(met, key=lambda r: r["nfe"]) if met else min(rows, key=lambda r: r["quality"])
        sampler = f", {k[5]} sampler" if k[5] else ""
        lines.append(line(f"{k[1]} {k[4]} {k[3]}{sampler} t0={k[2]:g}", r, r["nfe"]))
    for name, m in report.get("draft_alone", {}).items():
        lines.append(line(f"{name} draft alone", m, 0))
    return lines


def _against_draft(report: dict[str, Any]) -> list[str]:
    """Every warm row against its own draft alone: better or worse on Fréchet distance and on
    perplexity (lower is better for both), and whether it is worse on both at once."""
    drafts = report.get("draft_alone", {})
    warm = [r for r in report["rows"] if r.get("draft") in drafts and r["solver"] == "euler"]
    if not warm:
        return []
    lines = [
        "",
        "## Refined text against its draft alone",
        "",
        "Every warm row (seed 0) against the draft it starts from, sampled alone: the Fréchet "
        "distance and the perplexity (lower is better for both); *worse on both* marks a refiner "
        "that makes its draft worse on both at once.",
        "",
        "| draft | t0 | sampler | NFE | Fréchet (draft alone) | perplexity (draft alone) | "
        "Fréchet | perplexity | draft kept | worse on both |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    worse = 0
    for r in sorted(warm, key=lambda r: (r["draft"], r["t0"], r.get("sampler", ""), r["nfe"])):
        d = drafts[r["draft"]]
        both = r["quality"] > d["quality"] and r["perplexity"] > d["perplexity"]
        worse += both
        lines.append(
            f"| {r['draft']} | {r['t0']:g} | {r.get('sampler') or '-'} | {r['nfe']} | "
            f"{_fmt(d['quality'])} | {_fmt(d['perplexity'])} | {_fmt(r['quality'])} | "
            f"{_fmt(r['perplexity'])} | {_fmt(r.get('draft_kept'))} | {'yes' if both else 'no'} |"
        )
    lines += ["", f"Rows worse than their draft on both: {worse} of {len(warm)}."]
    return lines


def _text_extras(report: dict[str, Any]) -> list[str]:
    """Sections only the text profile has: every metric at the operating points, beside real
    held-out text and the drafts alone, and decoded samples per method."""
    if "real_text_metrics" not in report:
        return []
    head = (
        "| Fréchet (MiniLM) | perplexity (trigram) | OOV rate | distinct-2 | entropy (bits) "
        "| draft tokens kept |"
    )

    def cells(m: dict[str, Any]) -> str:
        return " | ".join(_fmt(m.get(k)) for k in _TEXT_METRICS)

    lines = [
        "",
        "## Every text metric",
        "",
        "| text | NFE " + head,
        "|---|---|---|---|---|---|---|---|",
        f"| real held-out text | - | {cells(report['real_text_metrics'])} |",
    ]
    for name, m in report.get("draft_alone", {}).items():
        lines.append(f"| {name} draft alone | 0 | {cells(m)} |")

    def row_of(s: dict[str, Any]) -> dict[str, Any]:
        return next(
            r
            for r in report["rows"]
            if _key(r) == _key({"t0": 0.0, **s}) and r["solver"] == "euler" and r["nfe"] == s["nfe"]
        )

    for r in report["reference"]:
        label = f"reference: {r['method']} ({coupling_label(r)})"
        lines.append(f"| {label} | {r['nfe']} | {cells(row_of(r))} |")
    for s in operating_points(report):
        row = row_of(s)
        label = f"{s['method']} {s.get('draft') or ''} {coupling_label(s)} t0={s['t0']:g}"
        lines.append(f"| {label} | {s['nfe']} | {cells(row)} |")
    ref = report["reference"][0]
    lines += _text_target(report, {**row_of(ref), "nfe": ref["nfe"]})
    lines += _against_draft(report)
    lines += ["", "## Decoded samples", ""]
    for name, texts in report.get("text_samples", {}).items():
        lines += [f"### {name}", ""] + [f"{i + 1}. {t!r}" for i, t in enumerate(texts)] + [""]
    return lines


_STRUCTURED_METRICS = (
    "quality",
    "valid",
    "copy",
    "transitions",
    "distinct_2",
    "distinct_samples",
    "copied",
    "draft_kept",
)

# Issue 12's structured-text target: warm start at t0 >= 0.8 within 5% of the reference's
# quality (seed means) at >= 5x fewer NFE, and strictly more valid than its draft alone.
STRUCTURED_TARGET = {"min_t0": 0.8, "nfe_factor": 5}


def _structured_extras(report: dict[str, Any]) -> list[str]:
    """Sections only the structured-text profile has: every metric of each setting beside the
    drafts alone and held-out sentences, the samplers side by side, the target, and decoded
    samples marked valid or not."""
    extra = report.get("structured")
    if not extra:
        return []

    def cells(m: dict[str, Any]) -> str:
        return " | ".join(_fmt(m.get(k)) for k in _STRUCTURED_METRICS)

    head = (
        "| constraints | valid | copy | transitions | distinct-2 | distinct samples | "
        "in training set | draft kept |"
    )
    lines = [
        "",
        "## Every structured-text metric",
        "",
        f"Language: `{extra['language']}`, {extra['num_constraints']} constraints per sentence, "
        f"{extra['sentences_in_language']:,} sentences in the language. constraints = fraction "
        "of the constraints that hold (the quality), valid = fraction of samples where all hold, "
        "in training set = fraction of samples found verbatim among the training sentences, "
        "draft kept = fraction of the draft's tokens a refiner leaves as they were (seed 0).",
        "",
        "| sentences | NFE " + head,
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| held-out sentences | - | {cells(extra['held_out'])} |",
    ]
    drafts = report.get("draft_alone", {})
    for name, m in drafts.items():
        lines.append(f"| {name} draft alone | 0 | {cells(m)} |")
    euler = [r for r in report["rows"] if r["solver"] == "euler"]
    for r in euler:
        if not r.get("draft") and r["nfe"] == report["reference"][0]["nfe"]:
            lines.append(
                f"| reference: {r['method']} ({coupling_label(r)}) | {r['nfe']} | {cells(r)} |"
            )
    warm = [r for r in euler if r.get("draft")]
    grid = sorted({r["nfe"] for r in warm})
    lines += [
        "",
        "### The samplers on the same weights",
        "",
        "Per warm refiner and sampler: constraints / valid / draft kept at each NFE (seed 0); the "
        "drafts alone for scale.",
        "",
        "| draft | t0 | sampler | " + " | ".join(f"{n} NFE" for n in grid) + " |",
        "|---|---|---|" + "---|" * len(grid),
    ]
    table: dict[tuple[Any, ...], dict[int, str]] = defaultdict(dict)
    for r in warm:
        cell = f"{_fmt(r['quality'])} / {_fmt(r['valid'])} / {_fmt(r.get('draft_kept'))}"
        table[(r["draft"], r["t0"], r.get("sampler", "-"))][r["nfe"]] = cell
    for (draft, t0, sampler), cols in sorted(table.items()):
        lines.append(
            f"| {draft} | {t0:g} | {sampler} | " + " | ".join(cols.get(n, "-") for n in grid) + " |"
        )
    for name, m in drafts.items():
        lines.append(
            f"| {name} alone | - | - | "
            + " | ".join(f"{_fmt(m['quality'])} / {_fmt(m['valid'])}" for _ in grid)
            + " |"
        )
    ref = report["reference"][0]
    budget = ref["nfe"] / STRUCTURED_TARGET["nfe_factor"]
    lines += [
        "",
        "## Structured-text target",
        "",
        f"Warm start at t0 ≥ {STRUCTURED_TARGET['min_t0']:g}: at parity with the reference "
        f"({ref['method']}, {ref['nfe']} NFE, mean {_fmt(ref.get('quality_mean', ref['quality']))}"
        f") on seed means at ≤ {budget:g} NFE, and strictly more valid than its draft alone "
        "(valid fraction and constraints, seed 0, at that point or, where none is at parity, at "
        "the best point).",
        "",
        "| draft | t0 | coupling | NFE | constraints (mean) | valid | draft alone: constraints "
        "/ valid | at parity within budget | more valid than the draft | target met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in operating_points(report):
        if not s.get("draft") or s["t0"] < STRUCTURED_TARGET["min_t0"]:
            continue
        row = next(r for r in warm if _key(r) == _key(s) and r["nfe"] == s["nfe"])
        alone = drafts.get(s["draft"], {})
        parity = bool(s["at_parity"]) and s["nfe"] <= budget
        more = bool(alone) and row["valid"] > alone["valid"] and row["quality"] > alone["quality"]
        lines.append(
            f"| {s['draft']} | {s['t0']:g} | {coupling_label(s)} | {s['nfe']} | "
            f"{_fmt(s.get('quality_mean', s['quality']))} | {_fmt(row['valid'])} | "
            f"{_fmt(alone.get('quality'))} / {_fmt(alone.get('valid'))} | "
            f"{'yes' if parity else 'no'} | {'yes' if more else 'no'} | "
            f"{'yes' if parity and more else 'no'} |"
        )
    lines += ["", "## Decoded samples", ""]
    for name, texts in report.get("text_samples", {}).items():
        lines += [f"### {name}", ""] + [f"{i + 1}. `{t}`" for i, t in enumerate(texts)] + [""]
    return lines


def _seed_section(report: dict[str, Any]) -> list[str]:
    """The qualities behind every parity judgment: the reference candidates and each setting's
    operating point, per sampling seed, with mean and standard error."""
    seeded = [r for r in report["rows"] if r.get("n_seeds", 1) > 1]
    if not seeded:
        return []
    n = max(r["n_seeds"] for r in seeded)
    refs = {r["dataset"]: r for r in report["reference"]}
    cands = [
        r
        for r in seeded
        if r["method"] == refs[r["dataset"]]["method"] and r["nfe"] == refs[r["dataset"]]["nfe"]
    ]
    points = {(*_key(s), s["nfe"]) for s in operating_points(report) if s.get("n_seeds", 1) > 1}
    # the other methods' points of the headline table (cold flows below the budget, peers)
    points |= {
        (*_key(e), e["nfe_at_parity"])
        for e in report.get("methods", [])
        if e["nfe_at_parity"] and not e["draft"]
    }
    picked = [r for r in seeded if r["solver"] == "euler" and (*_key(r), r["nfe"]) in points]
    screened = sum(bool(r.get("screened_out")) for r in report["rows"])
    lines = [
        "",
        "## Quality across sampling seeds",
        "",
        f"Parity is judged on means over {n} sampling seeds (seed 0 and {n - 1} more, same model, "
        f"NFE and sample count). Resampled: the reference candidates (each cold flow at the "
        f"reference budget) and, per other setting (warm starts, peers, and the cold flows below "
        f"the reference budget) in order of NFE, the rows whose seed-0 quality could be at parity "
        f"until one is ({len(seeded) - len(cands)} rows); {screened} rows were beyond the band by "
        "more than three of the reference's per-seed standard deviations (screened out, not at "
        "parity), and the costlier rows of a setting already at parity were not judged. Shown: "
        "the reference candidates and each setting's operating point.",
        "",
        "| dataset | method | draft | t0 | coupling | NFE | per seed | mean ± sem | at parity |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    parity = {(*_key(s), s["nfe"]): s["at_parity"] for s in report["speedups"]}
    lib = report["metric"]["lower_is_better"]
    for r in picked:  # rows of the headline table, judged the same way
        parity.setdefault((*_key(r), r["nfe"]), _at_parity(r, refs[r["dataset"]], lib))
    for r in cands + picked:
        lines.append(
            f"| {r['dataset']} | {r['method']} | {r.get('draft') or '-'} | {r['t0']:g} | "
            f"{coupling_label(r)} | {r['nfe']} | {', '.join(_fmt(q) for q in r['quality_seeds'])} | "
            f"{_fmt(r['quality_mean'])} ± {_fmt(r['quality_sem'], 2)} | "
            + {True: "yes", False: "no", None: "-"}[parity.get((*_key(r), r["nfe"]))]
            + " |"
        )
    return lines


def _image_extras(report: dict[str, Any]) -> list[str]:
    """Sections only the image profiles have: the note, drafts alone, Inception FID,
    memorisation and the sample grid."""
    lines: list[str] = []
    if report.get("note"):
        lines += ["", f"**Note:** {report['note']}"]
    if report.get("draft_only"):
        lines += ["", "## Drafts alone", "", "| draft | quality | train seconds |", "|---|---|---|"]
        secs = report.get("draft_train_seconds", {})
        for name, q in report["draft_only"].items():
            lines.append(f"| {name} | {_fmt(q)} | {secs.get(name, float('nan')):.1f} |")
    if report.get("inception"):
        lines += [
            "",
            "## Inception FID (reference and best warm setting)",
            "",
            "| method | draft | coupling | t0 | NFE | samples | real images | FID Inception | "
            "FID classifier |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in report["inception"]:
            lines.append(
                f"| {r['method']} | {r['draft'] or '-'} | {coupling_label(r)} | {r['t0']:g} | "
                f"{r['nfe']} | {r['n_samples']} | {r.get('n_real', '-')} | "
                f"{_fmt(r['fid_inception'])} | "
                f"{_fmt(r['fid_classifier'])} |"
            )
    if "real_nn_distance" in report:
        lines += [
            "",
            "## Memorisation: mean L2 distance to the nearest training image",
            "",
            f"Held-out real images: {_fmt(report['real_nn_distance'])}. Samples at each setting's "
            "operating point:",
            "",
            "| method | draft | coupling | t0 | NFE | NN distance |",
            "|---|---|---|---|---|---|",
        ]
        for s in operating_points(report):
            row = next(
                (
                    r
                    for r in report["rows"]
                    if _key(r) == _key(s) and r["solver"] == "euler" and r["nfe"] == s["nfe"]
                ),
                None,
            )
            if row is not None and "nn_distance" in row:
                lines.append(
                    f"| {s['method']} | {s.get('draft') or '-'} | {coupling_label(s)} | "
                    f"{s['t0']:g} | {s['nfe']} | {_fmt(row['nn_distance'])} |"
                )
    if report.get("sample_grid"):
        lines += ["", "## Samples", "", f"![samples]({report['sample_grid']})"]
    return lines


def write_sample_grids(grids: dict[str, torch.Tensor], path: Path) -> Path:
    """One row of images in [-1, 1] per method, titled, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    fig, axes = plt.subplots(len(grids), 1, figsize=(12, 0.75 * len(grids) * 1.6), squeeze=False)
    for ax, (title, x) in zip(axes[:, 0], grids.items()):
        img = make_grid(x.clamp(-1, 1).add(1).div(2), nrow=len(x), padding=1, pad_value=1.0)
        ax.imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(title, fontsize=9, loc="left")
        ax.axis("off")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    refs = {r["dataset"]: r for r in report["reference"]}
    cold_method = report["reference"][0]["method"]
    curves: dict[tuple[Any, ...], list[tuple[int, float]]] = defaultdict(list)
    dopri: dict[tuple[Any, ...], tuple[int, float]] = {}
    # the cold peers (trained from a teacher) appear, as the cold flows, in every panel of their
    # set; the warm students (taught by a warm refiner) in their draft's panel only
    taught = {_key(r) for r in report["rows"] if "teacher" in r}
    shared = {
        _key(r)
        for r in report["rows"]
        if r["method"] == cold_method or ("teacher" in r and not r.get("draft"))
    }
    peer_colors = {"reflow": "tab:orange", "distill": "tab:purple", "fgm": "tab:green"}
    peer_colors |= {"ws_reflow": "tab:cyan", "ws_distill": "tab:pink"}
    peer_markers = {"ws_reflow": "s", "ws_distill": "P"}
    for r in report["rows"]:
        if r["solver"] == "euler":
            curves[_key(r)].append((r["nfe"], r["quality"]))
        else:
            dopri[_key(r)] = (r["nfe"], r["quality"])
    # One panel per data set and draft; the cold flows appear in each panel of their data set.
    panels = list(dict.fromkeys((k[0], k[4]) for k in curves if k not in shared))
    panels = panels or list(dict.fromkeys((k[0], "") for k in curves))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    t0s = sorted({k[2] for k in curves if k not in taught and k[1] != cold_method})
    cmap = plt.get_cmap("viridis")
    for ax, (ds, draft) in zip(axes[0], panels):
        ref = refs[ds]
        for k, pts in curves.items():
            cold = k[1] == cold_method
            if k[0] != ds or (k not in shared and k[4] != draft):
                continue
            pts.sort()
            peer = k in taught and not cold  # one-step peers are a single marker
            if cold:
                color = "black" if k[3] == "independent" else "tab:red"
            elif peer:
                color = peer_colors.get(k[1], "tab:brown")
            else:
                color = cmap(t0s.index(k[2]) / max(1, len(t0s) - 1))
            style = {"independent": "--", "nearest_neighbour": ":"}.get(k[3], "-")
            if cold:
                label = f"{k[1]} {k[3]}"
            elif peer:
                label = f"{k[1]} t0={k[2]:g}" if k[4] else k[1]
            else:
                label = f"{k[1]} {k[3]} t0={k[2]:g}"
            ax.plot(
                *zip(*pts),
                "-" if peer else style,
                color=color,
                marker=peer_markers.get(k[1], "D") if peer else "o",
                ms=5 if peer else 3,
                lw=1.2,
                label=label,
            )
            if k in dopri:
                ax.plot(*dopri[k], marker="*", ms=9, color=color, ls="none")
        ax.axhline(ref["quality"], color="grey", lw=0.8, ls=":", label="Q_ref (cold, 100 Euler)")
        floor = report.get("real_vs_real", {}).get(ds)
        if floor is not None:
            ax.axhline(floor, color="grey", lw=0.8, ls="-.", label="real vs real")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{ds}, {draft} draft" if draft else ds)
        ax.set_xlabel("NFE (stars: dopri5)")
        ax.set_ylabel(report["metric"]["name"])
    axes[0][-1].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def rich_methods_table(report: dict[str, Any]) -> Any:
    """The headline (every method against the reference) as a rich table."""
    from rich.table import Table

    lines = _method_lines(report)
    table = Table(title=f"{report['profile']}: every method ({report['metric']['name']})")
    if not lines:
        return table
    header, *body = [ln for ln in lines if ln.startswith("| ") and not ln.startswith("|---")]
    for h in header.strip("| ").split(" | "):
        table.add_column(h)
    for ln in body:
        table.add_row(*ln.strip("| ").split(" | "))
    return table


def rich_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(
        title=f"{report['profile']}: warm-start operating points ({report['metric']['name']})"
    )
    wd = _has_drafts(report)
    for h in _header(wd):
        table.add_column(
            h, justify="right" if h not in ("dataset", "coupling", "draft") else "left"
        )
    for s in operating_points(report):
        table.add_row(*_speedup_line(s, wd))
    return table


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``<profile>.json``, ``.md`` and ``.png`` atomically (temporary file, then rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / report["profile"]
    paths = [base.with_suffix(".json"), base.with_suffix(".md"), base.with_suffix(".png")]
    texts = [json.dumps(report, indent=1, default=float), markdown(report)]
    for path, text in zip(paths, texts):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    tmp_png = paths[2].with_suffix(".tmp.png")
    plot(report, tmp_png)
    tmp_png.replace(paths[2])
    return paths
