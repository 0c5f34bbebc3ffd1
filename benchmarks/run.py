"""``python -m benchmarks.run --profile digits`` (what ``make benchmark PROFILE=digits`` runs)."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .engine import run_profile
from .profiles import profiles
from .report import (
    build_report,
    device_name,
    rich_methods_table,
    rich_table,
    write_report,
    write_sample_grids,
)

RESULTS = Path(__file__).resolve().parent / "results"


class LineProgress:
    """Progress as one printed line a step, for logs where rich's live bar is not shown."""

    def __init__(self, console: Console) -> None:
        self.console, self.tasks, self.start = console, {}, time.perf_counter()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: int) -> int:
        self.tasks[len(self.tasks)] = [0, total]
        return len(self.tasks) - 1

    def update(
        self, task: int, advance: int = 0, description: str = "", total: int | None = None
    ) -> None:
        self.tasks[task][0] += advance
        if total is not None:
            self.tasks[task][1] = total
            if not advance:
                return  # a grown total is not a step
        done, total = self.tasks[task]
        self.console.print(
            f"[{time.perf_counter() - self.start:6.0f} s] {done}/{total} {description}"
        )


def _command(argv: list[str] | None, profile: str) -> str:
    """What reproduces this run: the Makefile's line only where nothing else was given."""
    given = sys.argv[1:] if argv is None else list(argv)
    if argv is None and given == ["--profile", profile]:
        return "make benchmark PROFILE=" + profile
    return "python -m benchmarks.run " + shlex.join(given)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--profile",
        default="digits",
        help="digits (default), toy, fashion_mnist (-gpu, -cpu), text, text-structured, text-gpu, "
        "ot_solvers, precision (bf16 against fp32), t0_range (one refiner across t0), or a "
        "-smoke profile",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument(
        "--workers", type=int, default=None, help="training processes (default: the profile's)"
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="training steps of every refiner (default: the profile's; recorded in the results)",
    )
    args = parser.parse_args(argv)
    if args.profile == "ot_solvers":
        return run_ot_profile(args.out, argv)
    if args.profile == "precision":
        from .precision import main as run_precision

        command = "make benchmark PROFILE=precision" if argv is None else None
        return run_precision(["--out", str(args.out)], command=command)
    from .t0_range import range_profiles

    if args.profile in range_profiles():
        return run_range_profile(range_profiles()[args.profile], args.out, argv)
    known = profiles()
    if args.profile not in known:
        parser.error(f"unknown --profile {args.profile!r}; choose one of {', '.join(known)}")
    profile = known[args.profile]
    if profile.accelerator == "gpu" and not torch.cuda.is_available():
        parser.error(
            f"profile {profile.name} is GPU-sized and needs a CUDA device (none is visible); on "
            "a CPU run its CPU counterpart (text-structured, fashion_mnist)."
        )
    if args.workers is not None:
        profile = replace(profile, workers=args.workers)
    if args.train_steps is not None:
        profile = replace(profile, train_steps=args.train_steps)
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    command = _command(argv, args.profile)
    start = time.perf_counter()
    progress: Progress | LineProgress
    if console.is_terminal:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
    else:
        progress = LineProgress(console)
    with progress, tempfile.TemporaryDirectory(prefix="ws_fm-bench-") as work:
        result = run_profile(profile, Path(work), progress)
    report = build_report(
        result.pop("rows"),
        profile=profile.name,
        command=command,
        date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        metric=profile.task.metric,
        lower_is_better=profile.lower_is_better,
        nfe_grid=profile.cold_grid,
        reference_steps=profile.reference_steps,
        cold_method=profile.methods[0],
        warm_method=profile.methods[1],
        cold_nfe_at_equal_step=result.pop("cold_nfe_at_equal_step"),
        extra=result,
    )
    grids = report.pop("sample_grids", None)
    paths = []
    if grids:
        args.out.mkdir(parents=True, exist_ok=True)
        paths.append(write_sample_grids(grids, args.out / f"{profile.name}_samples.png"))
        report["sample_grid"] = paths[0].name
    report["total_seconds"] = time.perf_counter() - start
    paths = write_report(report, args.out) + paths
    if report.get("note"):
        console.print(f"[bold]Note:[/bold] {report['note']}")
    console.print(rich_methods_table(report))
    console.print(rich_table(report))
    console.print(f"wrote {', '.join(map(str, paths))} in {report['total_seconds']:.0f} s")
    return 0


def run_ot_profile(out: Path, argv: list[str] | None) -> int:
    """The exact-OT solver measurement (``benchmarks/ot_solvers.py``)."""
    from .ot_solvers import run_ot_solvers, write

    start = time.perf_counter()
    return _finish(run_ot_solvers(), start, _command(argv, "ot_solvers"), write, out, Console())


def run_range_profile(rp: Any, out: Path, argv: list[str] | None) -> int:
    """One warm refiner across t0 against one per t0 (``benchmarks/t0_range.py``)."""
    from .t0_range import run_t0_range, write

    console = Console(width=140)
    start = time.perf_counter()
    report = run_t0_range(rp, LineProgress(console))
    return _finish(report, start, _command(argv, rp.name), write, out, console)


def _finish(
    report: dict[str, Any], start: float, command: str, write: Any, out: Path, console: Console
) -> int:
    """Stamp a stand-alone measurement's report (command, device, date, duration) and write it."""
    report["command"] = command
    report["device"] = device_name()
    report["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report["total_seconds"] = time.perf_counter() - start
    paths = write(report, out)
    console.print(f"wrote {', '.join(map(str, paths))} in {report['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
