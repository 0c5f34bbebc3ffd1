"""Image profiles: drafts (PCA Gaussian, VAE, GAN), cold flows and WS-FM refiners on a UNet, FID.

Phases: (1) drafts are trained in this process and their banks built once; (2) refiners are
trained in ``workers`` processes (one thread each), warm ones on the shared draft banks; (3) every
model is evaluated here, one after another, so that timings share one device: classifier FID and
nearest-neighbour distance to the training set (the memorisation figure) on the NFE grid, dopri5,
wall-clock per 1,000 samples, and Inception FID for the reference and the best warm setting.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging
from torchmetrics.image.fid import FrechetInceptionDistance

from ws_fm.callbacks.fid import classifier_for
from ws_fm.couplings import nearest_indices
from ws_fm.data import ImageDataModule, WarmStartDataModule, load_labelled_images
from ws_fm.drafts import GANDraft, GaussianDraft, VAEDraft
from ws_fm.metrics.fid_features import InceptionFeatures
from ws_fm.nets import UNet
from ws_fm.refiners import FlowMatching, WarmStartFlowMatching
from ws_fm.speedup import within

from .common import (
    NFE_GRID,
    RefinerJob,
    bench_trainer,
    cold_nfe_at_equal_step,
    quiet,
    sample_and_time,
    seed_statistics,
    timed,
    train_in_workers,
)

__all__ = ["ImageProfile", "ImageJob", "run_images"]


@dataclass(frozen=True)
class ImageProfile:
    name: str = "digits"
    source: str = "digits"
    sample_shape: tuple[int, ...] = (1, 8, 8)
    drafts: tuple[str, ...] = ("gaussian", "vae", "gan")
    draft_steps: int = 1500
    # WS-FM: the t0 sweep with minibatch-OT pairs for every draft; the other couplings (the
    # independent ablation, nearest neighbour with its memorisation figure) at ablation_t0.
    t0s: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95)
    ablation_t0: float = 0.8
    ablation_couplings: tuple[str, ...] = ("independent", "nearest_neighbour")
    cold_couplings: tuple[str, ...] = ("independent", "minibatch_ot")
    unet_channels: int = 16
    channel_mults: tuple[int, ...] = (1, 2)
    train_steps: int = 800
    batch_size: int = 128
    lr: float = 1e-3
    ema_decay: float = 0.99
    bank_size: int = 5000
    n_eval: int = 1000
    cold_grid: tuple[int, ...] = NFE_GRID
    warm_grid: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    reference_steps: int = 100
    n_time: int = 250
    timing_repeats: int = 2
    inception_samples: int = 1000  # 0 skips the Inception FID
    # Parity is judged on the mean over n_seeds sampling seeds (benchmarks.common.seed_statistics).
    n_seeds: int = 5
    n_real: int = 0  # held-out images for the FID's real statistics; 0: the whole test split
    grid_samples: int = 32  # per method in <profile>_samples.png; 0: no grid
    workers: int = 2
    seed: int = 0
    accelerator: str = "cpu"  # "gpu": one CUDA device, refiners trained one after another
    note: str = ""  # printed and stored with the results (e.g. a CPU fallback's reductions)

    @property
    def device(self) -> torch.device:
        return torch.device("cuda" if self.accelerator == "gpu" else "cpu")


ImageJob = RefinerJob  # one job type for every profile


def image_jobs(p: ImageProfile) -> list[ImageJob]:
    jobs = [ImageJob("cold_fm", c) for c in p.cold_couplings]
    for d in p.drafts:
        jobs += [ImageJob("ws_fm", "minibatch_ot", t0, d) for t0 in p.t0s]
        jobs += [ImageJob("ws_fm", c, p.ablation_t0, d) for c in p.ablation_couplings]
    return jobs


def make_draft(p: ImageProfile, name: str) -> torch.nn.Module:
    cls = {"gaussian": GaussianDraft, "vae": VAEDraft, "gan": GANDraft}[name]
    return cls(p.sample_shape)


def train_draft(p: ImageProfile, name: str) -> torch.nn.Module:
    L.seed_everything(p.seed, verbose=False)
    draft = make_draft(p, name)
    dm = ImageDataModule(p.source, batch_size=p.batch_size)
    if name == "gaussian":
        draft.fit(dm.train_data())  # closed form
    else:
        bench_trainer(p.draft_steps, accelerator=p.accelerator).fit(draft, dm)
    return draft.eval()


def build_refiner(p: ImageProfile, job: ImageJob, draft: torch.nn.Module | None) -> FlowMatching:
    net = UNet(
        in_channels=p.sample_shape[0], channels=p.unet_channels, channel_mults=p.channel_mults
    )
    common: dict[str, Any] = dict(
        optimizer=lambda params: torch.optim.Adam(params, lr=p.lr),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, p.train_steps),
        sample_shape=p.sample_shape,
    )
    if job.method == "cold_fm":
        return FlowMatching(net, coupling=job.coupling, **common)
    assert draft is not None
    return WarmStartFlowMatching(net, draft, t0=job.t0, coupling=job.coupling, **common)


def _datamodule(p: ImageProfile, job: ImageJob, bank_dir: Path) -> L.LightningDataModule:
    data = ImageDataModule(p.source, batch_size=p.batch_size)
    if job.method == "cold_fm":
        return data
    return WarmStartDataModule(
        data,
        bank_size=p.bank_size,
        bank_dir=str(bank_dir),
        seed=p.seed,
        on_stale="error",
        progress=False,
    )


def train_refiner(
    p: ImageProfile, job: ImageJob, draft_state: dict[str, Any] | None, bank_dir: Path
) -> dict[str, Any]:
    """Train one refiner (in a worker process, one thread on CPU)."""
    if p.accelerator == "cpu":
        torch.set_num_threads(1)
    quiet()
    L.seed_everything(p.seed, verbose=False)
    draft = None
    if job.draft:
        draft = make_draft(p, job.draft)
        draft.load_state_dict(draft_state)
    model = build_refiner(p, job, draft)
    start = time.perf_counter()
    bench_trainer(
        p.train_steps, [EMAWeightAveraging(decay=p.ema_decay)], accelerator=p.accelerator
    ).fit(model, _datamodule(p, job, bank_dir))
    return {
        "job": job,
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "train_seconds": time.perf_counter() - start,
    }


class FID:
    """FID against the held-out split with fixed real statistics (computed once)."""

    def __init__(
        self,
        features: torch.nn.Module,
        real: torch.Tensor,
        batch: int = 250,
        device: torch.device | str = "cpu",
    ) -> None:
        self.metric = FrechetInceptionDistance(
            feature=features, reset_real_features=False, normalize=True
        ).to(device)
        self.batch, self.device = batch, device
        for chunk in real.split(batch):
            self.metric.update(chunk.to(device), real=True)

    def __call__(self, fake: torch.Tensor) -> float:
        self.metric.reset()
        for chunk in fake.clamp(-1, 1).split(self.batch):
            self.metric.update(chunk.to(self.device), real=False)
        return float(self.metric.compute())


def nn_distance(x: torch.Tensor, train: torch.Tensor) -> float:
    """Mean L2 distance from each sample to its nearest training image."""
    flat, ref = x.reshape(len(x), -1).cpu(), train.reshape(len(train), -1).cpu()
    return float((flat - ref[nearest_indices(flat, ref)]).norm(dim=1).mean())


def evaluate(
    p: ImageProfile, model: FlowMatching, job: ImageJob, fid: FID, train: torch.Tensor
) -> list[dict[str, Any]]:
    model.eval()
    torch.manual_seed(p.seed)
    warm = job.method == "ws_fm"
    per_1k = 1000 / p.n_time
    draft = model.draw_source(p.n_eval) if warm else None
    draft_s = 0.0
    draft_time = None
    if warm:
        draft_time, draft_s = timed(partial(model.draw_source, p.n_time), p.timing_repeats)
    grid = p.warm_grid if warm else sorted(set(p.cold_grid) | {p.reference_steps})
    settings = [("euler", s) for s in grid] + (
        # the adaptive solver for the cold flows and the sweep's coupling at ablation_t0
        [("dopri5", None)]
        if not warm or (job.t0 == p.ablation_t0 and job.coupling == "minibatch_ot")
        else []
    )
    rows = []
    for solver, steps in settings:
        # speed-ups are read from the Euler rows; the adaptive solver's time is measured once
        repeats = p.timing_repeats if solver == "euler" else 1
        res, sec = sample_and_time(
            model, solver, steps, p.n_eval, p.n_time, repeats, draft, draft_time
        )
        rows.append(
            {
                "dataset": p.source,
                "method": job.method,
                "t0": job.t0,
                "coupling": job.coupling,
                **({"draft": job.draft} if warm else {}),
                "solver": solver,
                "steps": steps,
                "nfe": res.nfe,
                "quality": fid(res.samples),
                "nn_distance": nn_distance(res.samples, train),
                "seconds_per_1k": sec * per_1k,
                "draft_seconds_per_1k": draft_s * per_1k,
            }
        )
    return rows


def run_images(p: ImageProfile, work_dir: Path, progress: Any = None) -> dict[str, Any]:
    quiet()
    bank_dir = work_dir / "banks"
    dm = ImageDataModule(p.source)
    train, test = dm.train_data(), dm.test_data()
    test_labels = load_labelled_images(p.source)[3]
    if p.n_real:  # a fixed subset of the held-out split for the real statistics
        g = torch.Generator().manual_seed(p.seed)
        keep = torch.randperm(len(test), generator=g)[: p.n_real]
        test, test_labels = test[keep], test_labels[keep]

    task = progress.add_task("drafts", total=len(p.drafts)) if progress else None
    drafts: dict[str, torch.nn.Module] = {}
    draft_seconds: dict[str, float] = {}
    for name in p.drafts:
        start = time.perf_counter()
        drafts[name] = train_draft(p, name)
        draft_seconds[name] = time.perf_counter() - start
        # Each bank the draft's refiners need, built once here through the DataModule (the
        # refiners' couplings decide what it holds); the refiners only read them.
        for job in [j for j in image_jobs(p) if j.draft == name]:
            _datamodule(p, job, bank_dir).prepare_bank(build_refiner(p, job, drafts[name]))
        if progress:
            progress.update(task, advance=1, description=f"trained draft {name}")

    todo = image_jobs(p)
    states = [drafts[j.draft].state_dict() if j.draft else None for j in todo]
    trained = train_in_workers(train_refiner, p, todo, states, bank_dir, progress)

    classifier = classifier_for(p.source)
    fid = FID(classifier, test, device=p.device)
    etask = progress.add_task("evaluating", total=len(trained)) if progress else None
    rows: list[dict[str, Any]] = []
    models = {}
    for res in trained:
        job = res["job"]
        model = build_refiner(p, job, drafts.get(job.draft))
        model.load_state_dict(res["state_dict"])
        model.to(p.device)
        models[job] = model
        rows += evaluate(p, model, job, fid, train)
        if progress:
            progress.update(etask, advance=1, description=f"evaluated {job.label}")
    g = torch.Generator().manual_seed(p.seed)
    # As many real training images as generated samples, so that the FID's small-sample bias
    # is the same as the generated rows'.
    real_subset = train[torch.randperm(len(train), generator=g)[: min(p.n_eval, len(train))]]
    extra: dict[str, Any] = {
        "real_vs_real": {p.source: fid(real_subset)},
        "real_nn_distance": nn_distance(test, train),
        "draft_train_seconds": draft_seconds,
        "draft_only": {n: draft_only_fid(p, d, fid) for n, d in drafts.items()},
        "train_seconds": {r["job"].label: r["train_seconds"] for r in trained},
        "classifier_test_accuracy": classifier.accuracy(test, test_labels),
        "profile_settings": asdict(p),
        "note": p.note,
    }

    def resample(r: dict[str, Any], k: int) -> float:
        torch.manual_seed(p.seed + k)
        return fid(models[_job(r)].sample(p.n_eval, steps=r["steps"]).samples)

    seed_statistics(
        rows,
        resample,
        n_seeds=p.n_seeds,
        reference_steps=p.reference_steps,
        cold_method="cold_fm",
        warm_method="ws_fm",
        progress=progress,
    )
    extra["inception"] = (
        inception_fids(p, rows, models, test, progress) if p.inception_samples else []
    )
    if p.grid_samples:
        extra["sample_grids"] = sample_grids(p, rows, models, drafts)
    cold_nfe = cold_nfe_at_equal_step({*p.t0s, p.ablation_t0}, p.warm_grid)
    return {"rows": rows, "cold_nfe_at_equal_step": cold_nfe, **extra}


def draft_only_fid(p: ImageProfile, draft: torch.nn.Module, fid: Any) -> float:
    """FID of ``n_eval`` drafts alone, drawn from a fixed seed (not from whatever state the
    evaluation left the generator in)."""
    torch.manual_seed(p.seed)
    return fid(draft.sample(p.n_eval))


def reference_row(p: ImageProfile, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The best cold flow at the reference budget (Euler, ``reference_steps``), by seed mean."""
    return min(
        (
            r
            for r in rows
            if r["solver"] == "euler"
            and r["method"] == "cold_fm"
            and r["steps"] == p.reference_steps
        ),
        key=lambda r: r.get("quality_mean", r["quality"]),
    )


def best_warm_row(
    rows: list[dict[str, Any]], ref: dict[str, Any], draft: str | None = None
) -> dict[str, Any]:
    """The cheapest warm Euler row at parity (within 5% of ``ref``), else the best warm row."""
    warm = [
        r
        for r in rows
        if r["solver"] == "euler"
        and r["method"] == "ws_fm"
        and (draft is None or r.get("draft") == draft)
    ]

    def mean(r: dict[str, Any]) -> float:
        return r.get("quality_mean", r["quality"])

    parity = [r for r in warm if not r.get("screened_out") and within(mean(r), mean(ref))]
    if parity:
        return min(parity, key=lambda r: (r["nfe"], mean(r)))
    return min(warm, key=mean)


def _job(r: dict[str, Any]) -> ImageJob:
    return ImageJob(r["method"], r["coupling"], r["t0"], r.get("draft", ""))


def sample_grids(
    p: ImageProfile,
    rows: list[dict[str, Any]],
    models: dict[ImageJob, FlowMatching],
    drafts: dict[str, torch.nn.Module],
) -> dict[str, torch.Tensor]:
    """``grid_samples`` images per method: each draft alone, the reference, and each draft's
    warm operating point (as in the results table)."""
    ref = reference_row(p, rows)
    out: dict[str, torch.Tensor] = {}
    for name, d in drafts.items():
        torch.manual_seed(p.seed)
        out[f"{name} draft alone"] = d.sample(p.grid_samples).cpu()
    torch.manual_seed(p.seed)
    out[f"cold {ref['coupling']} Euler {ref['steps']}"] = (
        models[_job(ref)].sample(p.grid_samples, steps=ref["steps"]).samples.cpu()
    )
    for name in drafts:
        r = best_warm_row(rows, ref, name)
        torch.manual_seed(p.seed)
        out[f"WS-FM {name} {r['coupling']} t0={r['t0']} NFE {r['nfe']}"] = (
            models[_job(r)].sample(p.grid_samples, steps=r["steps"]).samples.cpu()
        )
    return out


def inception_fids(
    p: ImageProfile,
    rows: list[dict[str, Any]],
    models: dict[ImageJob, FlowMatching],
    test: torch.Tensor,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Inception FID of the reference (best cold flow, Euler 100) and of the best warm setting."""
    ref = reference_row(p, rows)
    best = best_warm_row(rows, ref)
    task = progress.add_task("Inception FID", total=2) if progress else None
    fid = FID(InceptionFeatures(), test, batch=50, device=p.device)
    out = []
    for r in (ref, best):
        job = _job(r)
        torch.manual_seed(p.seed)
        x = models[job].sample(p.inception_samples, steps=r["steps"]).samples
        out.append(
            {
                **{k: r[k] for k in ("method", "t0", "coupling", "steps", "nfe")},
                "draft": r.get("draft"),
                "n_samples": p.inception_samples,
                "fid_inception": fid(x),
                "fid_classifier": r["quality"],
            }
        )
        if progress:
            progress.update(task, advance=1, description=f"Inception FID {job.label}")
    return out
