"""Pieces shared by the benchmark profiles."""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import lightning as L
import torch

from ws_fm.solvers import solve
from ws_fm.speedup import PARITY_TOLERANCE, better, mean_sem, reaches, within

#: The cold flows' NFE grid (docs/design.md §2): quality-matched speed-ups are read off it.
NFE_GRID = (1, 2, 4, 8, 16, 32, 64, 128)

__all__ = [
    "NFE_GRID",
    "quiet",
    "bench_trainer",
    "coupling_label",
    "timed",
    "cold_nfe_at_equal_step",
    "WorkerPool",
    "Resample",
    "fill_seeds",
    "parity_bound",
    "judge_setting",
    "setting_key",
    "seed_statistics",
]


def quiet() -> None:
    """Silence warnings and Lightning's info lines (benchmarks print their own progress)."""
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def cpu_bf16_flags() -> list[str]:
    """The CPU's bf16 and AMX flags (``/proc/cpuinfo``; empty where unreadable)."""
    try:
        flags = next(
            line.split(":", 1)[1].split()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if "bf16" in f or f.startswith("amx"))


def native_bf16_cpu() -> bool:
    """Whether the CPU computes in bf16 natively (AVX-512 BF16 or AMX), as the Intel Xeon
    that measured the bf16 profiles does; AMD EPYC machines here do not."""
    return bool({"avx512_bf16", "amx_bf16"} & set(cpu_bf16_flags()))


def bench_trainer(
    steps: int,
    callbacks: list[Any] | None = None,
    accelerator: str = "cpu",
    precision: str = "",
) -> L.Trainer:
    """A one-device Trainer for ``steps`` steps without logging, checkpoints, bars or
    validation; ``precision`` as Lightning takes it (default: bf16 mixed precision on GPU,
    32-bit on CPU; ``benchmarks/precision.py`` measures bf16 on CPU)."""
    return L.Trainer(
        max_steps=steps,
        accelerator=accelerator,
        precision=precision or ("bf16-mixed" if accelerator == "gpu" else "32-true"),
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=callbacks or [],
    )


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    """Result of the first call and the best time over ``repeats`` calls (seconds)."""
    out, best = None, float("inf")
    for i in range(repeats):
        start = time.perf_counter()
        res = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # CUDA kernels run asynchronously
        best = min(best, time.perf_counter() - start)
        if i == 0:
            out = res
    return out, best


def cold_nfe_at_equal_step(
    t0s: Iterable[float], steps: Iterable[int]
) -> dict[tuple[float, int], int]:
    """Counted NFE of a cold Euler solve from ``t = 0`` at each warm step size ``(1 - t0) / steps``.

    The count depends on the solver alone, not on the network, so a zero field is integrated;
    the NFE is still counted by the solver's ``NFECounter``, not computed.
    """
    steps = list(steps)
    return {
        (t0, n): solve(
            lambda x, t: torch.zeros_like(x),
            torch.zeros(1, 1),
            0.0,
            "euler",
            step_size=(1 - t0) / n,
        ).nfe
        for t0 in t0s
        for n in steps
    }


def _exit_with_parent(parent: int) -> None:
    """Pool initializer: a worker leaves as soon as the benchmark that spawned it is gone (killed
    or crashed), instead of training on for nobody and slowing the next run down."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


class WorkerPool:
    """Jobs in ``workers`` spawned processes, results as they finish, with a progress task.

    Jobs may be submitted while results are collected, so that work which needs the result of
    another job (the refiners of a draft trained in the pool) joins the queue when it can run.
    """

    def __init__(self, workers: int, progress: Any = None, title: str = "jobs") -> None:
        self.pool = ProcessPoolExecutor(
            workers,
            mp_context=get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
        self.pending: set[Future[Any]] = set()
        self.progress, self.submitted = progress, 0
        self.task = progress.add_task(title, total=0) if progress else None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        # On an error, queued jobs are dropped and running ones stopped: otherwise the
        # interpreter's exit waits for them, and a failed run trains on for nobody.
        if exc_type is not None:
            # ProcessPoolExecutor has no public way to stop running workers before Python 3.14
            # (terminate_workers); its process table is the one handle there is.
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
        self.pool.shutdown(wait=exc_type is None, cancel_futures=True)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.pending.add(self.pool.submit(fn, *args))
        self.submitted += 1
        if self.progress:
            self.progress.update(self.task, total=self.submitted)

    def results(self) -> Iterator[Any]:
        """Each job's result as it finishes, until none is pending (re-checked after each)."""
        while self.pending:
            done, self.pending = wait(self.pending, return_when=FIRST_COMPLETED)
            for fut in done:
                res = fut.result()
                if self.progress:
                    label = res.get("label", "") if isinstance(res, dict) else ""
                    self.progress.update(self.task, advance=1, description=label)
                yield res


#: ``resample(row, k)``: the row's quality again, from the same model and settings, at the k-th
#: further sampling seed.
Resample = Callable[[dict[str, Any], int], float]


def fill_seeds(r: dict[str, Any], resample: Resample, n_seeds: int) -> dict[str, Any]:
    """``r`` with the seed fields (``quality_seeds``, ``quality_mean``, ``quality_sem``,
    ``n_seeds``) of its seed-0 quality and ``n_seeds - 1`` resamples."""
    qs = [r["quality"]] + [resample(r, k) for k in range(1, n_seeds)]
    mean, sem, n = mean_sem(qs)
    r.update(quality_seeds=qs, quality_mean=mean, quality_sem=sem, n_seeds=n)
    return r


def parity_bound(refs: list[dict[str, Any]], lower_is_better: bool = True) -> tuple[float, float]:
    """The reference mean (best candidate by seed mean) and the screening bound: the parity band
    around it plus three of the reference's per-seed standard deviations."""
    lib = lower_is_better
    ref = refs[0]
    for r in refs[1:]:
        ref = r if better(r["quality_mean"], ref["quality_mean"], lib) else ref
    std = ref["quality_sem"] * ref["n_seeds"] ** 0.5
    margin = PARITY_TOLERANCE * abs(ref["quality_mean"]) + 3 * std
    return ref["quality_mean"], ref["quality_mean"] + (margin if lib else -margin)


def judge_setting(
    group: list[dict[str, Any]],
    resample: Resample,
    ref_mean: float,
    bound: float,
    n_seeds: int,
    lower_is_better: bool = True,
) -> list[dict[str, Any]]:
    """One warm setting's Euler rows, in order of NFE, resampled until one is at parity on the
    means (its operating point); costlier rows are ``not_judged`` and rows whose seed-0 quality
    is beyond ``bound`` are ``screened_out`` (one draw, not at parity).  Updated in place."""
    found = False
    for r in sorted(group, key=lambda r: r["nfe"]):
        if found:
            r.update(quality_mean=r["quality"], quality_sem=None, n_seeds=1, not_judged=True)
        elif not reaches(r["quality"], bound, lower_is_better):
            r.update(quality_mean=r["quality"], quality_sem=None, n_seeds=1, screened_out=True)
        else:
            fill_seeds(r, resample, n_seeds)
            found = within(r["quality_mean"], ref_mean, PARITY_TOLERANCE, lower_is_better)
    return group


def setting_key(r: dict[str, Any]) -> tuple[Any, ...]:
    """What makes one warm setting: method, draft, t0, coupling and the token sampler where a
    profile compares several (within a data set)."""
    return (
        r["dataset"],
        r["method"],
        r.get("draft", ""),
        r["t0"],
        r["coupling"],
        r.get("sampler", ""),
    )


def coupling_label(r: dict[str, Any]) -> str:
    """A row's coupling as printed, with its token sampler where a profile compares several."""
    return r["coupling"] + (f", {r['sampler']} sampler" if r.get("sampler") else "")


def seed_statistics(
    rows: list[dict[str, Any]],
    resample: Resample,
    *,
    n_seeds: int,
    reference_steps: int,
    cold_method: str,
    warm_method: str,
    lower_is_better: bool = True,
) -> None:
    """Give every row a parity judgment can rest on the mean of ``n_seeds`` sampling seeds.

    One draw of the quality moves by about as much as the parity band (FID on 1,000 samples: ~10%
    against 5%), so parity is judged on seed means (``ws_fm.speedup.mean_sem``).  Resampled, in
    place: every reference candidate (each cold flow's Euler row at ``reference_steps``), then
    each warm setting by :func:`judge_setting` against the best candidate's :func:`parity_bound`.
    This keeps the cost to the rows a judgment rests on.  (The benchmark engine runs the same
    pieces, the settings in parallel.)
    """
    if n_seeds < 2:
        return
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        euler = [r for r in rows if r["dataset"] == ds and r["solver"] == "euler"]
        refs = [r for r in euler if r["method"] == cold_method and r["steps"] == reference_steps]
        for r in refs:
            fill_seeds(r, resample, n_seeds)
        ref_mean, bound = parity_bound(refs, lower_is_better)
        settings: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for r in euler:
            if r["method"] == warm_method:
                settings.setdefault(setting_key(r), []).append(r)
        for group in settings.values():
            judge_setting(group, resample, ref_mean, bound, n_seeds, lower_is_better)
