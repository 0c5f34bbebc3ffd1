"""Pieces shared by the benchmark profiles."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import lightning as L
import torch

from ws_fm.refiners import FlowMatching
from ws_fm.solvers import SolveResult, solve

__all__ = [
    "quiet",
    "bench_trainer",
    "timed",
    "sample_and_time",
    "cold_nfe_at_equal_step",
    "train_in_workers",
    "WorkerPool",
    "RefinerJob",
]


@dataclass(frozen=True)
class RefinerJob:
    """One refiner a benchmark trains: a cold flow, or a warm one from ``draft`` at ``t0``."""

    method: str  # cold_fm | ws_fm | cold_dfm | ws_dfm
    coupling: str
    t0: float = 0.0
    draft: str = ""

    @property
    def label(self) -> str:
        return f"{self.method}/{self.coupling}" + (
            f"/{self.draft}/t0={self.t0}" if self.draft else ""
        )


def quiet() -> None:
    """Silence warnings and Lightning's info lines (benchmarks print their own progress)."""
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def bench_trainer(
    steps: int, callbacks: list[Any] | None = None, accelerator: str = "cpu"
) -> L.Trainer:
    """A one-device Trainer for ``steps`` steps without logging, checkpoints, bars or
    validation; bf16 mixed precision on GPU."""
    return L.Trainer(
        max_steps=steps,
        accelerator=accelerator,
        precision="bf16-mixed" if accelerator == "gpu" else "32-true",
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


def sample_and_time(
    model: FlowMatching,
    solver: str,
    steps: int | None,
    n_eval: int,
    n_time: int,
    repeats: int,
    source: torch.Tensor | None = None,
    time_source: torch.Tensor | None = None,
) -> tuple[SolveResult, float]:
    """``n_eval`` samples for the quality, and the best time of ``repeats`` separate runs on
    ``n_time`` samples (drafts pre-drawn, so that only the refinement is timed)."""
    res = model.sample(n_eval, solver=solver, steps=steps, source=source)
    _, sec = timed(
        partial(model.sample, n_time, solver=solver, steps=steps, source=time_source), repeats
    )
    return res, sec


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


class WorkerPool:
    """Jobs in ``workers`` spawned processes, results as they finish, with a progress task.

    Jobs may be submitted while results are collected, so that work which needs the result of
    another job (the refiners of a draft trained in the pool) joins the queue when it can run.
    """

    def __init__(self, workers: int, progress: Any = None, what: str = "jobs") -> None:
        self.pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
        self.pending: set[Future[Any]] = set()
        self.progress, self.submitted = progress, 0
        self.task = progress.add_task(f"training {what}", total=0) if progress else None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        # On an error, queued jobs are dropped and running ones are not waited for.
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
                    label = res["job"].label if "job" in res else res.get("label", "")
                    self.progress.update(self.task, advance=1, description=f"trained {label}")
                yield res


def train_in_workers(
    train_one: Callable[..., dict[str, Any]],
    profile: Any,
    jobs: list[Any],
    states: list[Any],
    bank_dir: Path,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """``train_one(profile, job, draft_state, bank_dir)`` for every job in ``profile.workers``
    spawned processes; results in job order, progress reported as each one finishes."""
    with WorkerPool(profile.workers, progress, f"{len(jobs)} refiners") as pool:
        for job, state in zip(jobs, states):
            pool.submit(train_one, profile, job, state, bank_dir)
        trained = list(pool.results())
    return sorted(trained, key=lambda r: jobs.index(r["job"]))
