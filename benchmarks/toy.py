"""The toy profile: train cold FM and WS-FM on each toy set, then measure quality against NFE."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from multiprocessing import get_context
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging

from ws_fm.data import ToyDataModule
from ws_fm.drafts import GaussianMixtureDraft
from ws_fm.metrics import sliced_wasserstein
from ws_fm.nets import MLP
from ws_fm.refiners import FlowMatching, WarmStartFlowMatching

from .common import (
    bench_trainer,
    cold_nfe_at_equal_step,
    quiet,
    sample_and_time,
    seed_statistics,
    timed,
)
from .profiles import ToyProfile

__all__ = ["Job", "jobs", "build_model", "train_job", "run_toy"]


@dataclass(frozen=True)
class Job:
    dataset: str
    method: str  # cold_fm | ws_fm
    coupling: str
    t0: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.method}/{self.coupling}" + (
            f"/t0={self.t0}" if self.method == "ws_fm" else ""
        )


def jobs(p: ToyProfile) -> list[Job]:
    out: list[Job] = []
    for ds in p.datasets:
        out += [Job(ds, "cold_fm", c) for c in p.couplings]
        out += [Job(ds, "ws_fm", c, t0) for t0 in p.t0s for c in p.couplings]
    return out


def _datamodule(p: ToyProfile, job: Job) -> ToyDataModule:
    return ToyDataModule(
        job.dataset, n_train=p.n_train, n_test=p.n_eval, batch_size=p.batch_size, seed=p.seed
    )


def build_model(p: ToyProfile, job: Job) -> FlowMatching:
    net = MLP(dim=2, hidden=p.hidden, depth=p.depth)
    common: dict[str, Any] = dict(
        optimizer=lambda params: torch.optim.Adam(params, lr=p.lr),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, p.train_steps),
        rtol=p.rtol,
        atol=p.atol,
    )
    if job.method == "cold_fm":
        return FlowMatching(net, coupling=job.coupling, **common)
    draft = GaussianMixtureDraft(dim=2, n_components=p.draft_components, seed=p.seed)
    return WarmStartFlowMatching(net, draft, t0=job.t0, coupling=job.coupling, **common)


def train_job(p: ToyProfile, job: Job, threads: int = 1) -> dict[str, Any]:
    """Train one model (in a worker process); returns its weights and training time."""
    torch.set_num_threads(threads)
    quiet()
    L.seed_everything(p.seed, verbose=False)
    model, dm = build_model(p, job), _datamodule(p, job)
    trainer = bench_trainer(p.train_steps, [EMAWeightAveraging(decay=p.ema_decay)])
    start = time.perf_counter()
    trainer.fit(model, dm)
    return {
        "job": job,
        "state_dict": model.state_dict(),
        "train_seconds": time.perf_counter() - start,
    }


def load_model(p: ToyProfile, job: Job, state_dict: dict[str, torch.Tensor]) -> FlowMatching:
    model = build_model(p, job)
    model.load_state_dict(state_dict)
    model.sample_shape = (2,)
    return model.eval()


def evaluate(
    p: ToyProfile, job: Job, model: FlowMatching, test: torch.Tensor
) -> list[dict[str, Any]]:
    """Quality and timing of one trained model on the NFE grid (Euler) and with dopri5.

    Quality uses ``n_eval`` samples; time is the best of ``timing_repeats`` separate runs on
    ``n_time`` samples, draft and refinement timed apart, all in this process.
    """
    torch.manual_seed(p.seed)
    warm = job.method == "ws_fm"
    per_1k = 1000 / p.n_time
    draft = model.draw_source(p.n_eval) if warm else None
    draft_time: torch.Tensor | None = None
    draft_s = 0.0
    if warm:
        draft_time, draft_s = timed(partial(model.draw_source, p.n_time), p.timing_repeats)
    steps_list = sorted(set(p.nfe_grid) | ({p.reference_steps} if not warm else set()))
    settings = [("euler", s) for s in steps_list] + [("dopri5", None)]
    rows = []
    for solver, steps in settings:
        res, sec = sample_and_time(
            model, solver, steps, p.n_eval, p.n_time, p.timing_repeats, draft, draft_time
        )
        rows.append(
            {
                "dataset": job.dataset,
                "method": job.method,
                "t0": job.t0 if warm else 0.0,
                "coupling": job.coupling,
                "solver": solver,
                "steps": steps,
                "nfe": res.nfe,
                "quality": sliced_wasserstein(res.samples, test),
                "seconds_per_1k": sec * per_1k,
                "draft_seconds_per_1k": draft_s * per_1k,
            }
        )
    return rows


def run_toy(p: ToyProfile, progress: Any = None) -> dict[str, Any]:
    """Train every job (``p.workers`` processes), then evaluate all in this process."""
    todo = jobs(p)
    task = progress.add_task(f"training {len(todo)} models", total=len(todo)) if progress else None
    trained: list[dict[str, Any]] = []
    if p.workers > 1:
        with ProcessPoolExecutor(p.workers, mp_context=get_context("spawn")) as pool:
            for res in pool.map(train_job, [p] * len(todo), todo):
                trained.append(res)
                if progress:
                    progress.update(task, advance=1, description=f"trained {res['job'].label}")
    else:
        for job in todo:
            trained.append(train_job(p, job, threads=torch.get_num_threads()))
            if progress:
                progress.update(task, advance=1, description=f"trained {job.label}")

    etask = progress.add_task("evaluating", total=len(trained)) if progress else None
    rows: list[dict[str, Any]] = []
    floors: dict[str, float] = {}
    tests: dict[str, torch.Tensor] = {}
    models: dict[Job, FlowMatching] = {}
    for ds in p.datasets:
        dm = ToyDataModule(ds, n_train=p.n_train, n_test=p.n_eval, seed=p.seed)
        test = tests[ds] = dm.test_data()
        floors[ds] = sliced_wasserstein(dm.train_data()[: p.n_eval], test)
        for res in (r for r in trained if r["job"].dataset == ds):
            job = res["job"]
            models[job] = load_model(p, job, res["state_dict"])
            rows += evaluate(p, job, models[job], test)
            if progress:
                progress.update(etask, advance=1, description=f"evaluated {job.label}")

    def resample(r: dict[str, Any], k: int) -> float:
        job = Job(
            r["dataset"], r["method"], r["coupling"], r["t0"] if r["method"] == "ws_fm" else 0.0
        )
        torch.manual_seed(p.seed + k)
        samples = models[job].sample(p.n_eval, solver="euler", steps=r["steps"]).samples
        return sliced_wasserstein(samples, tests[r["dataset"]])

    seed_statistics(
        rows,
        resample,
        n_seeds=p.n_seeds,
        reference_steps=p.reference_steps,
        cold_method="cold_fm",
        warm_method="ws_fm",
        progress=progress,
    )
    cold_nfe = cold_nfe_at_equal_step(p.t0s, p.nfe_grid)
    return {
        "rows": rows,
        "real_vs_real": floors,
        "cold_nfe_at_equal_step": cold_nfe,
        "train_seconds": {r["job"].label: r["train_seconds"] for r in trained},
        "profile_settings": asdict(p),
    }
