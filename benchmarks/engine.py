"""The benchmark engine: one profile type, one job type, one worker, one grid evaluation.

A :class:`Profile` is data: its task (data set, backbone, drafts, metric: a :class:`Task`), the
methods it compares (:mod:`benchmarks.methods`), the t0 sweep and ablations, the NFE grids and the
budgets.  :func:`run_profile` runs any profile in four phases:

1. **Train and score** (``workers`` spawned processes, one thread each on CPU).  Drafts fitted in
   closed form are fitted here; drafts with gradient steps train in the pool beside the cold
   flows.  As each draft is ready its sample banks are built here, through the DataModule (the
   refiner's coupling decides what a bank holds), and its refiners join the pool.  Each worker
   trains one refiner and scores it on its grid at sampling seed 0 (Euler on the method's grid;
   dopri5 where the profile asks), so scoring overlaps training.  The peers (``reflow``,
   ``distill``, ``fgm``) wait for their teacher, the cold flow with ``teacher_coupling``: when it
   is trained, the bank of its pairs is built here (ReFlow and distillation share it; its cost is
   read from the bank's metadata) and the peers join the pool.
2. **Seed means** (the pool): the reference candidates (each cold flow at ``reference_steps``),
   then every other setting (warm, peers, and the cold flows below the reference budget) in order
   of NFE until one is at parity (:func:`benchmarks.common.judge_setting`), ``n_seeds`` seeds each.
3. **Timing** (this process, the pool shut down, one model after another): the best of
   ``timing_repeats`` runs on ``n_time`` samples per row, drafts pre-drawn and timed apart, so
   that every wall-clock ratio is measured in one process on one device.
4. **Task extras** (this process): what only the task reports (real-vs-real floors, drafts alone,
   Inception FID, sample grids, decoded text).

Quality at sampling seed ``k`` is always drawn the same way (:func:`draw`): ``torch.manual_seed
(seed + k)``, drafts (warm) or noise (cold) of ``n_eval`` samples, then the solve; seed 0 is the
row's ``quality``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch import nn

from ws_fm.calibration import DEFAULT_T0_GRID, calibrate_t0
from ws_fm.data import WarmStartDataModule
from ws_fm.refiners import FlowMatching
from ws_fm.solvers import DISCRETE_SAMPLERS, SolveResult

from .common import (
    WorkerPool,
    bench_trainer,
    cold_nfe_at_equal_step,
    fill_seeds,
    judge_setting,
    native_bf16_cpu,
    parity_bound,
    quiet,
    setting_key,
    timed,
)
from .methods import Method, get_method

__all__ = ["Task", "Evaluator", "Profile", "RefinerJob", "Run", "jobs", "draw", "run_profile"]


class Evaluator(Protocol):
    """Scores samples of one data set."""

    def quality(self, samples: torch.Tensor) -> float:
        """The profile's quality metric alone (what seed means are taken of)."""
        ...

    def __call__(self, samples: torch.Tensor, source: torch.Tensor | None) -> dict[str, float]:
        """``quality`` and any further per-row metric (``source``: the drafts, warm rows)."""
        ...


class Task(Protocol):
    """What a profile trains on and how it is scored: the part that differs between toy 2-D
    sets, images and text.  Implementations are frozen dataclasses (picklable, hashable).

    Optional: ``calibration_settings(p, dataset) -> dict``, keyword arguments of
    ``calibrate_t0`` for the task (``features``, ``distance``, ``n``, ``repeats``); without it
    the calibration's defaults for the data (the samples themselves, token histograms for
    token ids)."""

    metric: str

    def datasets(self) -> tuple[str, ...]: ...

    def datamodule(self, p: Profile, dataset: str) -> L.LightningDataModule:
        """The training data (a DataModule with ``train_data()``)."""
        ...

    def network(self, p: Profile, dataset: str) -> nn.Module: ...

    def draft(self, p: Profile, dataset: str, name: str) -> nn.Module:
        """An untrained draft (fitted in closed form when it has ``fit(data)``)."""
        ...

    def refiner_kwargs(self, p: Profile) -> dict[str, Any]:
        """Further keyword arguments of every refiner (sample shape, tolerances, ...)."""
        ...

    def evaluator(self, p: Profile, dataset: str) -> Evaluator: ...

    def extras(self, p: Profile, run: Run) -> dict[str, Any]:
        """Task-specific results, computed after the rows are final."""
        ...


@dataclass(frozen=True)
class Profile:
    """One benchmark: a task, the methods compared, the sweep, the grids and the budgets."""

    name: str
    task: Any  # a Task
    # (cold, warm) method names from benchmarks.methods.METHODS
    methods: tuple[str, str] = ("cold_fm", "ws_fm")
    drafts: tuple[str, ...] = ()
    cold_couplings: tuple[str, ...] = ("independent", "minibatch_ot")
    # Warm: every t0 with each sweep coupling; each ablation coupling at ablation_t0.
    t0s: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9)
    sweep_couplings: tuple[str, ...] = ("minibatch_ot",)
    ablation_t0: float = 0.8
    ablation_couplings: tuple[str, ...] = ()
    # Training (Adam(W) with cosine decay, EMA of the weights); drafts with gradient steps.
    train_steps: int = 800
    warm_steps: int = 0  # the warm refiners' training steps (0: train_steps)
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamw
    ema_decay: float = 0.99
    draft_steps: int = 1000
    # Sample banks of the warm refiners (0: drafts drawn on the fly while training); couplings
    # whose pairs live in the bank may ask for another size (0 there: the whole training split).
    bank_size: int = 0
    bank_sizes: tuple[tuple[str, int], ...] = ()
    # Evaluation: quality on n_eval samples; Euler on the method's grid; dopri5 rows for
    # "cold" flows, "cold+ablation" (and the first sweep coupling at ablation_t0), "all" or "none".
    n_eval: int = 1000
    cold_grid: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
    warm_grid: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    reference_steps: int = 100
    adaptive: str = "cold"
    # Timing: best of timing_repeats runs on n_time samples, reported per 1,000 samples.
    n_time: int = 250
    timing_repeats: int = 2
    # Parity is judged on the mean over n_seeds sampling seeds.
    n_seeds: int = 5
    workers: int = 2
    seed: int = 0
    accelerator: str = "cpu"  # "gpu": one CUDA device
    note: str = ""  # printed and stored with the results (e.g. a CPU fallback's reductions)
    lower_is_better: bool = True
    # The peers (benchmarks.methods: reflow, distill, fgm), taught by the cold flow with
    # teacher_coupling; ReFlow and distillation train on a bank of pair_count teacher pairs
    # (Euler at pair_steps), FGM online; peer_steps training steps each (0: train_steps).
    peers: tuple[str, ...] = ()
    teacher_coupling: str = "independent"
    peer_steps: int = 0
    pair_count: int = 0
    pair_solver: str = "euler"
    pair_steps: int = 100
    fgm_lr: float = 1e-4
    fgm_online_steps: int = 3
    # The warm students among the peers (ws_reflow, ws_distill): the drafts they are trained
    # from (empty: every draft) and their training steps (0: peer_steps).
    warm_student_drafts: tuple[str, ...] = ()
    warm_student_steps: int = 0
    # Euler steps of the warm teacher's pairs over [t0, 1] (0: pair_steps); (1 - t0) pair_steps
    # keeps the cold teacher's step size.
    warm_pair_steps: int = 0
    # Token refiners: the discrete samplers compared on each trained warm refiner (the first
    # one is the refiner's own; ws_fm.solvers.DISCRETE_SAMPLERS), none: the refiner's default.
    samplers: tuple[str, ...] = ()
    # Further keyword arguments of the warm refiners only (e.g. the masked path's sigma).
    warm_kwargs: tuple[tuple[str, Any], ...] = ()
    # Lightning's training precision ("": bf16-mixed on GPU, 32-true on CPU).
    precision: str = ""

    @property
    def device(self) -> torch.device:
        return torch.device("cuda" if self.accelerator == "gpu" else "cpu")

    @property
    def training_precision(self) -> str:
        """``precision``, but 32-true for bf16 on a CPU without native bf16 (AMD EPYC here):
        the bf16 profiles were chosen where the Intel Xeon's AMX made bf16 faster
        (results/precision.md), and elsewhere oneDNN has no bf16 LSTM kernel for the text
        drafts (a RuntimeError) and emulates the rest."""
        if self.accelerator == "cpu" and self.precision.startswith("bf16"):
            return self.precision if native_bf16_cpu() else "32-true"
        return self.precision

    @property
    def cold_method(self) -> Method:
        return get_method(self.methods[0])

    @property
    def warm_method(self) -> Method:
        return get_method(self.methods[1])

    def pair_steps_of(self, job: RefinerJob) -> int:
        """Euler steps of the teacher pairs ``job`` trains on (a warm student's from t0)."""
        if get_method(job.method).warm_teacher and self.warm_pair_steps:
            return self.warm_pair_steps
        return self.pair_steps

    def steps_of(self, job: RefinerJob) -> int:
        """Training steps of ``job``'s refiner."""
        method = get_method(job.method)
        if method.warm_teacher and self.warm_student_steps:
            return self.warm_student_steps
        if method.teacher and self.peer_steps:
            return self.peer_steps
        if method.warm and self.warm_steps:
            return self.warm_steps
        return self.train_steps


@dataclass(frozen=True)
class RefinerJob:
    """One refiner a benchmark trains: a cold flow, or a warm one from ``draft`` at ``t0``."""

    method: str
    coupling: str
    t0: float = 0.0
    draft: str = ""
    dataset: str = ""
    teacher: str = ""  # a peer's: the coupling of the cold flow that teaches it
    sampler: str = ""  # a token refiner's sampler, where the profile compares several

    @property
    def label(self) -> str:
        return (
            f"{self.dataset}/{self.method}/{self.coupling}"
            + (f"/{self.draft}/t0={self.t0}" if self.draft else "")
            + (f"/teacher={self.teacher}" if self.teacher else "")
            + (f"/sampler={self.sampler}" if self.sampler else "")
        )

    @property
    def trained_as(self) -> RefinerJob:
        """The job whose training this one shares (itself, but for a sampler variant)."""
        return replace(self, sampler="") if self.sampler else self

    @property
    def teacher_job(self) -> RefinerJob | None:
        """The cold flow that teaches this peer (None for other methods)."""
        if not self.teacher:
            return None
        if get_method(self.method).warm_teacher:  # the warm refiner of the same draft and t0
            return RefinerJob("ws_fm", self.teacher, self.t0, self.draft, self.dataset)
        # teachers are continuous cold flows (ws_fm.teachers refuses the discrete ones)
        return RefinerJob("cold_fm", self.teacher, dataset=self.dataset)

    @property
    def draft_key(self) -> tuple[str, str]:
        return (self.dataset, self.draft)


def sampler_settings(spec: str) -> dict[str, Any]:
    """A profile's sampler as the refiner's settings: ``"gated"``, or ``"gated@0.001"`` for
    the gated sampler with that confidence threshold (``ws_fm.solvers.DISCRETE_SAMPLERS``)."""
    name, _, threshold = spec.partition("@")
    if name not in DISCRETE_SAMPLERS:
        raise ValueError(f"sampler {spec!r}: choose one of {', '.join(DISCRETE_SAMPLERS)}")
    if not threshold:
        return {"sampler": name}
    if name != "gated" or not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"sampler {spec!r}: only 'gated@<threshold in (0, 1]>' takes one")
    return {"sampler": name, "threshold": float(threshold)}


def sampler_variants(p: Profile, job: RefinerJob) -> list[RefinerJob]:
    """The warm ``job`` under each of the profile's samplers (none without ``samplers``): one
    training, scored once per sampler."""
    if not job.draft or not p.samplers:
        return []
    return [replace(job, sampler=s) for s in p.samplers]


def jobs(p: Profile) -> list[RefinerJob]:
    """Every refiner of the profile, per data set: the cold flows, then per draft the t0 sweep
    and the ablation couplings."""
    cold, warm = p.methods
    out: list[RefinerJob] = []
    for ds in p.task.datasets():
        out += [RefinerJob(cold, c, dataset=ds) for c in p.cold_couplings]
        for d in p.drafts:
            out += [RefinerJob(warm, c, t0, d, ds) for t0 in p.t0s for c in p.sweep_couplings]
            out += [RefinerJob(warm, c, p.ablation_t0, d, ds) for c in p.ablation_couplings]
        for name in p.peers:
            if p.teacher_coupling not in p.cold_couplings:
                raise ValueError(
                    f"profile {p.name}: teacher_coupling={p.teacher_coupling!r} is not among "
                    f"its cold_couplings {p.cold_couplings}"
                )
            method = get_method(name)
            if method.warm_teacher:  # one per draft, taught by its warm refiner at ablation_t0
                teach = p.sweep_couplings[0]
                unknown = set(p.warm_student_drafts) - set(p.drafts)
                if unknown:
                    raise ValueError(
                        f"profile {p.name}: warm_student_drafts {sorted(unknown)} are not among "
                        f"its drafts {p.drafts}"
                    )
                for d in p.warm_student_drafts or p.drafts:
                    if RefinerJob(p.methods[1], teach, p.ablation_t0, d, ds) not in out:
                        raise ValueError(
                            f"profile {p.name}: {name} needs the warm refiner at "
                            f"t0={p.ablation_t0} ({teach}) among its t0s {p.t0s}"
                        )
                    out.append(RefinerJob(name, method.pairs, p.ablation_t0, d, ds, teach))
                continue
            out.append(RefinerJob(name, method.pairs, dataset=ds, teacher=p.teacher_coupling))
    return out


# --------------------------------------------------------------------------- building
def _optimizer(p: Profile) -> Any:
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[p.optimizer]
    return lambda params: cls(params, lr=p.lr)


def build_refiner(
    p: Profile, job: RefinerJob, draft: nn.Module | None, teacher: nn.Module | None = None
) -> FlowMatching:
    """``job``'s untrained refiner (a peer's from ``teacher``, or from an untrained cold flow
    of the teacher's shape when its weights are loaded next)."""
    method = get_method(job.method)
    steps = p.steps_of(job)
    kw: dict[str, Any] = dict(
        optimizer=_optimizer(p),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps),
        **p.task.refiner_kwargs(p),
    )
    if method.warm and not method.teacher:
        kw.update(dict(p.warm_kwargs))
    if job.sampler:
        kw.update(sampler_settings(job.sampler))
    if method.teacher:
        teacher_job = job.teacher_job
        assert teacher_job is not None
        own = draft if method.warm_teacher else None  # a warm teacher carries the draft
        kw.update(teacher=teacher or build_refiner(p, teacher_job, own), profile=p)
    return method.build(p.task.network(p, job.dataset), draft, job, **kw)


def load_teacher_of(
    p: Profile, job: RefinerJob, state: dict[str, Any], draft: nn.Module | None = None
) -> FlowMatching:
    """The trained flow that teaches ``job`` (a peer: a cold flow; a warm student: the warm
    refiner, with ``draft``), from its weights."""
    teacher_job = job.teacher_job
    assert teacher_job is not None
    teacher = build_refiner(p, teacher_job, draft if teacher_job.draft else None)
    teacher.load_state_dict(state)
    return teacher.eval()


def load_draft(p: Profile, dataset: str, name: str, state: dict[str, Any]) -> nn.Module:
    draft = p.task.draft(p, dataset, name)
    draft.load_state_dict(state)
    return draft.eval()


def load_refiner(
    p: Profile, job: RefinerJob, state: dict[str, Any], draft_state: dict[str, Any] | None
) -> FlowMatching:
    draft = load_draft(p, job.dataset, job.draft, draft_state) if job.draft else None
    model = build_refiner(p, job, draft)
    model.load_state_dict(state)
    return model.to(p.device).eval()


def training_data(p: Profile, job: RefinerJob, bank_dir: Path) -> L.LightningDataModule:
    """The job's DataModule: the task's data, wrapped in a sample bank for warm refiners when the
    profile keeps one (its size from ``bank_size`` / ``bank_sizes``; what it holds from the
    refiner's coupling)."""
    data = p.task.datamodule(p, job.dataset)
    if job.coupling == "teacher_pairs":
        if not p.pair_count:
            raise ValueError(f"profile {p.name} runs {job.method} but sets no pair_count")
        size = p.pair_count
    elif not job.draft or not p.bank_size:
        return data
    else:
        size = dict(p.bank_sizes).get(job.coupling, p.bank_size) or len(data.train_data())
    return WarmStartDataModule(
        data,
        bank_size=size,
        # one folder per data set (bank names repeat), and per warm teacher (its pairs are
        # named as the cold teacher's)
        bank_dir=str(
            bank_dir
            / job.dataset
            / (f"{job.draft}-t0={job.t0}" if job.teacher and job.draft else "")
        ),
        seed=p.seed,
        on_stale="error",
        progress=False,
    )


def _worker_setup(p: Profile) -> None:
    if p.accelerator == "cpu":
        torch.set_num_threads(1)
    quiet()


# --------------------------------------------------------------------------- scoring
_EVALUATORS: dict[tuple[Profile, str], Evaluator] = {}


def evaluator(p: Profile, dataset: str) -> Evaluator:
    """The data set's evaluator, built once per process (real statistics are computed once)."""
    key = (p, dataset)
    if key not in _EVALUATORS:
        _EVALUATORS[key] = p.task.evaluator(p, dataset)
    return _EVALUATORS[key]


def draw(
    p: Profile, job: RefinerJob, model: FlowMatching, solver: str, steps: int | None, k: int = 0
) -> tuple[SolveResult, torch.Tensor | None]:
    """``n_eval`` samples at sampling seed ``k`` (and the drafts they started from, warm)."""
    torch.manual_seed(p.seed + k)
    source = model.draw_source(p.n_eval) if job.draft else None
    return model.sample(p.n_eval, solver=solver, steps=steps, source=source), source


def settings(p: Profile, job: RefinerJob) -> list[tuple[str, int | None]]:
    """(solver, steps) of the job's rows: Euler on its method's grid, dopri5 where asked."""
    method = get_method(job.method)
    out: list[tuple[str, int | None]] = [("euler", s) for s in method.grid(p)]
    adaptive = {
        "all": True,
        "none": False,
        "cold": not method.warm and not method.teacher,
        "cold+ablation": (not method.warm and not method.teacher)
        or (job.t0 == p.ablation_t0 and job.coupling == p.sweep_couplings[0]),
    }[p.adaptive] and not method.teacher  # the peers are few-step samplers: Euler only
    return out + ([("dopri5", None)] if adaptive else [])


def score(p: Profile, job: RefinerJob, model: FlowMatching) -> list[dict[str, Any]]:
    """The job's rows at sampling seed 0 (no timing yet)."""
    ev = evaluator(p, job.dataset)
    rows = []
    for solver, steps in settings(p, job):
        res, source = draw(p, job, model, solver, steps)
        rows.append(
            {
                "dataset": job.dataset,
                "method": job.method,
                "t0": job.t0,
                "coupling": job.coupling,
                **({"draft": job.draft} if job.draft else {}),
                **({"sampler": job.sampler} if job.sampler else {}),
                "solver": solver,
                "steps": steps,
                "nfe": res.nfe,
                **ev(res.samples, source),
            }
        )
    return rows


# --------------------------------------------------------------------------- pool jobs
def train_draft(p: Profile, dataset: str, name: str) -> dict[str, Any]:
    """Train one draft with gradient steps (in a worker)."""
    _worker_setup(p)
    return fit_draft(p, dataset, name)


def fit_draft(p: Profile, dataset: str, name: str) -> dict[str, Any]:
    """Fit (closed form) or train one draft; returns its weights and seconds."""
    L.seed_everything(p.seed, verbose=False)
    start = time.perf_counter()
    draft = p.task.draft(p, dataset, name)
    data = p.task.datamodule(p, dataset)
    if callable(getattr(draft, "fit", None)):
        draft.fit(data.train_data())
    else:
        bench_trainer(p.draft_steps, accelerator=p.accelerator, precision=p.training_precision).fit(
            draft, data
        )
    return {
        "label": f"draft {dataset}/{name}",
        "key": (dataset, name),
        "state_dict": {k: v.cpu() for k, v in draft.state_dict().items()},
        "seconds": time.perf_counter() - start,
    }


def train_and_score(
    p: Profile,
    job: RefinerJob,
    draft_state: dict[str, Any] | None,
    bank_dir: Path,
    teacher_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one refiner (reading its bank; a peer from its teacher's weights), then score it
    at seed 0 on its grid."""
    _worker_setup(p)
    L.seed_everything(p.seed, verbose=False)
    draft = load_draft(p, job.dataset, job.draft, draft_state) if job.draft else None
    teacher = load_teacher_of(p, job, teacher_state, draft) if teacher_state is not None else None
    model = build_refiner(p, job, draft, teacher)
    start = time.perf_counter()
    bench_trainer(
        p.steps_of(job),
        [EMAWeightAveraging(decay=p.ema_decay)],
        accelerator=p.accelerator,
        precision=p.training_precision,
    ).fit(model, training_data(p, job, bank_dir))
    seconds = time.perf_counter() - start
    model = model.to(p.device).eval()
    first, *others = sampler_variants(p, job) or [job]
    if first.sampler:  # the profile's first sampler scores the trained weights first
        for name, value in sampler_settings(first.sampler).items():
            setattr(model, name, value)
    return {
        "label": f"trained and scored {job.label}",
        "job": first,
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "train_seconds": seconds,
        "rows": score(p, first, model),
        "variants": others,
    }


def score_variant(
    p: Profile, job: RefinerJob, state: dict[str, Any], draft_state: dict[str, Any] | None
) -> dict[str, Any]:
    """Score a trained warm refiner under another sampler (``job.sampler``), at seed 0."""
    _worker_setup(p)
    return {
        "label": f"scored {job.label}",
        "job": job,
        "state_dict": state,
        "rows": score(p, job, load_refiner(p, job, state, draft_state)),
    }


def _resampler(p: Profile, job: RefinerJob, model: FlowMatching) -> Any:
    def resample(r: dict[str, Any], k: int) -> float:
        res, _ = draw(p, job, model, "euler", r["steps"], k)
        return evaluator(p, r["dataset"]).quality(res.samples)

    return resample


def seed_job(
    p: Profile,
    job: RefinerJob,
    state: dict[str, Any],
    draft_state: dict[str, Any] | None,
    rows: list[dict[str, Any]],
    bound: tuple[float, float] | None,
) -> dict[str, Any]:
    """Seed means of a job's rows: every row given (reference candidates, ``bound`` None), or
    the warm setting judged in order of NFE against ``bound = (reference mean, screen)``."""
    _worker_setup(p)
    resample = _resampler(p, job, load_refiner(p, job, state, draft_state))
    if bound is None:
        rows = [fill_seeds(r, resample, p.n_seeds) for r in rows]
    else:
        rows = judge_setting(rows, resample, *bound, p.n_seeds, p.lower_is_better)
    return {"label": f"seed means {job.label}", "job": job, "rows": rows}


# --------------------------------------------------------------------------- the run
@dataclass
class Run:
    """Everything a finished run holds, for the task's extras."""

    profile: Profile
    rows: list[dict[str, Any]]
    models: dict[RefinerJob, FlowMatching] = field(default_factory=dict)
    drafts: dict[tuple[str, str], nn.Module] = field(default_factory=dict)
    draft_seconds: dict[str, float] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    #: per peer label: the teacher pairs it trained on (pairs, network evaluations, seconds)
    pair_costs: dict[str, dict[str, float]] = field(default_factory=dict)
    #: per (dataset, draft): calibrate_t0's choice and curve, before any refiner trains on it
    calibrations: list[dict[str, Any]] = field(default_factory=list)

    def job_of(self, r: dict[str, Any]) -> RefinerJob:
        return RefinerJob(
            r["method"],
            r["coupling"],
            r["t0"],
            r.get("draft", ""),
            r["dataset"],
            r.get("teacher", ""),
            r.get("sampler", ""),
        )

    def sample(self, r: dict[str, Any], n: int, seed: int | None = None) -> torch.Tensor:
        """``n`` samples of row ``r``'s model and Euler budget from a fixed seed."""
        torch.manual_seed(self.profile.seed if seed is None else seed)
        model = self.models[self.job_of(r)]
        return model.sample(n, solver="euler", steps=r["steps"]).samples


def _train_and_score_all(
    p: Profile, pool: WorkerPool, bank_dir: Path, run: Run
) -> list[dict[str, Any]]:
    todo = jobs(p)
    states: dict[tuple[str, str], dict[str, Any]] = {}

    def ready(key: tuple[str, str], state: dict[str, Any], seconds: float) -> None:
        states[key] = state
        run.draft_seconds["/".join(key) if len(p.task.datasets()) > 1 else key[1]] = seconds
        run.drafts[key] = load_draft(p, *key, state)
        run.calibrations.append(calibrate(p, key, run.drafts[key]))
        mine = [j for j in todo if j.draft_key == key and not j.teacher]
        # Each bank is built once, here, through the DataModule; the refiners only read it.
        for job in mine:
            data = training_data(p, job, bank_dir)
            if isinstance(data, WarmStartDataModule):
                data.prepare_bank(build_refiner(p, job, run.drafts[key]))
        for job in mine:
            pool.submit(train_and_score, p, job, state, bank_dir)

    def taught(teacher_job: RefinerJob, state: dict[str, Any]) -> None:
        # The teacher is trained: build the bank of its pairs once (here, through the
        # DataModule, as for drafts), then its students join the pool.
        teacher = None
        for job in [j for j in todo if j.teacher_job == teacher_job]:
            draft = run.drafts[job.draft_key] if job.draft else None
            data = training_data(p, job, bank_dir)
            if isinstance(data, WarmStartDataModule):
                teacher = teacher or load_teacher_of(p, job, state, draft)
                bank = data.prepare_bank(build_refiner(p, job, draft, teacher))
                assert bank is not None
                run.pair_costs[job.label] = dict(bank.meta.get("generation", {}))
            draft_state = states[job.draft_key] if job.draft else None
            pool.submit(train_and_score, p, job, draft_state, bank_dir, state)

    draft_keys = list(dict.fromkeys(j.draft_key for j in todo if j.draft))
    closed = [k for k in draft_keys if callable(getattr(p.task.draft(p, *k), "fit", None))]
    for key in draft_keys:
        if key not in closed:
            pool.submit(train_draft, p, *key)
    for job in todo:
        if not job.draft and not job.teacher:
            pool.submit(train_and_score, p, job, None, bank_dir)
    for key in closed:  # seconds to fit: here, while the pool trains
        res = fit_draft(p, *key)
        ready(key, res["state_dict"], res["seconds"])
    trained = []
    teacher_jobs = {j.teacher_job for j in todo if j.teacher}
    teacher_states: dict[RefinerJob, dict[str, Any]] = {}
    for res in pool.results():
        if "job" in res:
            trained.append(res)
            for variant in res.pop("variants", []):  # the same weights, another sampler
                base = res["job"].trained_as
                pool.submit(score_variant, p, variant, res["state_dict"], states[base.draft_key])
            if res["job"] in teacher_jobs:
                teacher_states[res["job"]] = res["state_dict"]
                taught(res["job"], res["state_dict"])
        else:
            ready(res["key"], res["state_dict"], res["seconds"])
    order = {s: i for i, s in enumerate(p.samplers)}
    trained.sort(key=lambda r: (todo.index(r["job"].trained_as), order.get(r["job"].sampler, 0)))
    seconds = {r["job"].trained_as: r["train_seconds"] for r in trained if "train_seconds" in r}
    for res in trained:
        job = res["job"]
        res.setdefault("train_seconds", seconds[job.trained_as])
        run.models[job] = load_refiner(p, job, res["state_dict"], states.get(job.draft_key))
        run.train_seconds[job.trained_as.label] = res["train_seconds"]
    for res in trained:  # rows carry their training cost (a peer's: beyond its teacher)
        job = res["job"]
        pairs = run.pair_costs.get(job.label, {})
        for r in res["rows"]:
            r["train_seconds"] = res["train_seconds"]
            if job.teacher:
                r.update(
                    teacher=job.teacher,
                    pair_count=int(pairs.get("pairs", 0)),
                    pair_teacher_nfe=int(pairs.get("sample_nfe", 0)),
                    pair_seconds=float(pairs.get("seconds", 0.0)),
                )
    return trained


def calibrate(p: Profile, key: tuple[str, str], draft: nn.Module) -> dict[str, Any]:
    """``calibrate_t0`` for one trained draft on its data set (the warm refiners' path, on the
    cold path's own noise whatever their sigma; in the task's calibration features, e.g. the
    images' FID feature space; the t0 grid of the calibration's default, which contains the
    profile's), here in the main process: seconds."""
    dataset, name = key
    warm = build_refiner(p, RefinerJob(p.methods[1], "independent", 0.5, name, dataset), draft)
    settings = getattr(p.task, "calibration_settings", None)
    kwargs: dict[str, Any] = settings(p, dataset) if settings is not None else {}
    features = kwargs.get("features")
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        cal = calibrate_t0(
            draft,
            p.task.datamodule(p, dataset).train_data(),
            path=warm.path.path,  # type: ignore[attr-defined]
            grid=sorted({*DEFAULT_T0_GRID, *p.t0s}),
            seed=p.seed,
            **kwargs,
        )
    return {
        "dataset": dataset,
        "draft": name,
        "t0": cal.t0,
        "passed": cal.passed,
        "metric": cal.metric,
        "features": type(features).__name__ if features is not None else "default",
        "grid": list(cal.grid),
        "distance": list(cal.distance),
        "floor": list(cal.floor),
        "tolerance": cal.tolerance,
        "n": cal.n,
        "seconds": time.perf_counter() - start,
    }


def _seed_means(p: Profile, pool: WorkerPool, trained: list[dict[str, Any]], run: Run) -> None:
    """Phase 2: the reference candidates' seeds, then each warm setting's judgment, in the
    pool (rows are replaced by the workers' updated copies)."""
    if p.n_seeds < 2:
        return
    by_job = {res["job"]: res for res in trained}
    cold = p.methods[0]

    def submit(job: RefinerJob, rows: list[dict[str, Any]], bound: Any) -> None:
        res = by_job[job]
        draft_state = run.drafts[job.draft_key].state_dict() if job.draft else None
        pool.submit(seed_job, p, job, res["state_dict"], draft_state, rows, bound)

    def euler(job: RefinerJob) -> list[dict[str, Any]]:
        return [r for r in by_job[job]["rows"] if r["solver"] == "euler"]

    def collect() -> None:
        for out in pool.results():
            done = {(r["solver"], r["steps"]): r for r in out["rows"]}
            res = by_job[out["job"]]
            res["rows"] = [done.get((r["solver"], r["steps"]), r) for r in res["rows"]]

    for job in by_job:
        if job.method == cold:
            submit(job, [r for r in euler(job) if r["steps"] == p.reference_steps], None)
    collect()
    for ds in p.task.datasets():
        refs = [
            r
            for job in by_job
            if job.method == cold and job.dataset == ds
            for r in euler(job)
            if r["steps"] == p.reference_steps
        ]
        bound = parity_bound(refs, p.lower_is_better)
        for job in by_job:
            if job.dataset != ds:
                continue
            rows = euler(job)
            if job.method == cold:  # below the reference budget (the reference has its seeds)
                rows = [r for r in rows if r["steps"] < p.reference_steps]
            assert len({setting_key(r) for r in rows}) <= 1  # one setting per job
            if rows:
                submit(job, rows, bound)
    collect()


def _time_rows(p: Profile, run: Run, trained: list[dict[str, Any]], progress: Any) -> None:
    """Phase 3: wall-clock per 1,000 samples of every row, here, one model after another."""
    task = progress.add_task("timing", total=len(trained)) if progress else None
    per_1k = 1000 / p.n_time
    for res in trained:
        job = res["job"]
        model = run.models[job]
        torch.manual_seed(p.seed)
        source, draft_s = None, 0.0
        if job.draft:
            source, draft_s = timed(partial(model.draw_source, p.n_time), p.timing_repeats)
        for r in res["rows"]:
            # speed-ups are read from the Euler rows; the adaptive solver is timed once
            repeats = p.timing_repeats if r["solver"] == "euler" else 1
            fn = partial(model.sample, p.n_time, solver=r["solver"], steps=r["steps"])
            _, sec = timed(partial(fn, source=source), repeats)
            r["seconds_per_1k"] = sec * per_1k
            r["draft_seconds_per_1k"] = draft_s * per_1k
        if progress:
            progress.update(task, advance=1, description=f"timed {job.label}")


def run_profile(p: Profile, work_dir: Path, progress: Any = None) -> dict[str, Any]:
    """Run every phase of ``p``; returns the rows and the task's extras (for the report)."""
    quiet()
    phases: dict[str, float] = {}
    start = time.perf_counter()
    run = Run(p, rows=[])
    with WorkerPool(p.workers, progress, "training, scoring, seed means") as pool:
        trained = _train_and_score_all(p, pool, work_dir / "banks", run)
        phases["drafts, banks, training and scoring"] = time.perf_counter() - start
        start = time.perf_counter()
        _seed_means(p, pool, trained, run)
        phases["seed means"] = time.perf_counter() - start
    start = time.perf_counter()
    _time_rows(p, run, trained, progress)
    run.rows = [r for res in trained for r in res["rows"]]
    phases["timing"] = time.perf_counter() - start
    start = time.perf_counter()
    extra = p.task.extras(p, run)
    phases["task extras"] = time.perf_counter() - start
    warm_t0s = {j.t0 for j in run.models if j.draft}
    return {
        "rows": run.rows,
        "cold_nfe_at_equal_step": cold_nfe_at_equal_step(warm_t0s, p.warm_grid),
        "draft_train_seconds": run.draft_seconds,
        "calibrations": run.calibrations,
        "train_seconds": run.train_seconds,
        "phase_seconds": phases,
        "profile_settings": {
            **asdict(p),
            "task": {"type": type(p.task).__name__, **asdict(p.task)},
        },
        "note": p.note,
        "training_precision": p.training_precision or "default",
        **extra,
    }
