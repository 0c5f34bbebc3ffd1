"""Text profile: n-gram and LSTM drafts, cold and warm discrete flows on a token transformer.

Phases: (1) training in ``workers`` processes (one thread each): drafts with gradient steps
(the LSTM) train in the pool beside the cold flow; the closed-form n-gram is fitted here; as each
draft is ready its banks are built here and its refiners join the pool's queue.  (2) every model
is evaluated here, one after another, on its NFE grid: Fréchet distance of MiniLM embeddings to
held-out text (the quality), trigram perplexity and OOV rate, distinct-2, unigram entropy, the
fraction of draft tokens a warm refiner keeps, and wall-clock per 1,000 sequences (draft time
separate).  Each metric is also reported on real held-out text and on the drafts alone.
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

from ws_fm.data import TextDataModule, WarmStartDataModule
from ws_fm.drafts import LSTMDraft, NGramDraft
from ws_fm.drafts.module import ClosedFormDraft
from ws_fm.metrics.text import (
    MiniLMFeatures,
    TrigramPerplexity,
    distinct_n,
    text_frechet,
    unigram_entropy,
)
from ws_fm.nets import TokenTransformer
from ws_fm.refiners import DiscreteFlowMatching, WarmStartDiscreteFlowMatching

from .common import (
    RefinerJob,
    WorkerPool,
    bench_trainer,
    cold_nfe_at_equal_step,
    quiet,
    sample_and_time,
    seed_statistics,
    timed,
)

__all__ = ["TextProfile", "TextJob", "run_text"]


@dataclass(frozen=True)
class TextProfile:
    name: str = "text"
    source: str = "janeausten"
    seq_len: int = 32
    vocab_size: int = 4000
    drafts: tuple[str, ...] = ("ngram", "lstm")
    lstm_steps: int = 1000
    t0s: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9)
    # The t0 sweep pairs each real sequence with the draft run along it (docs/design.md §1); the
    # ablation couplings (minibatch_ot: Hamming OT within the batch) run at ablation_t0.
    coupling: str = "teacher_forced"
    ablation_t0: float = 0.8
    ablation_couplings: tuple[str, ...] = ("minibatch_ot",)
    dim: int = 128
    depth: int = 2
    heads: int = 4
    train_steps: int = 500
    batch_size: int = 64
    lr: float = 1e-3
    ema_decay: float = 0.99
    bank_size: int = 5000  # free drafts (for minibatch_ot)
    tf_bank_size: int = 10000  # teacher-forced pairs: the first ... training sequences; 0 = all
    n_eval: int = 300
    n_real: int = 300
    cold_grid: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    warm_grid: tuple[int, ...] = (1, 2, 4, 8, 16)
    reference_steps: int = 100
    n_time: int = 100
    timing_repeats: int = 1
    n_show: int = 10  # decoded samples per method in the markdown
    # Parity is judged on the mean over n_seeds sampling seeds (benchmarks.common.seed_statistics).
    n_seeds: int = 5
    workers: int = 2
    seed: int = 0


TextJob = RefinerJob  # one job type for every profile


def text_jobs(p: TextProfile) -> list[TextJob]:
    jobs = [TextJob("cold_dfm", "independent")]
    for d in p.drafts:
        jobs += [TextJob("ws_dfm", p.coupling, t0, d) for t0 in p.t0s]
        jobs += [TextJob("ws_dfm", c, p.ablation_t0, d) for c in p.ablation_couplings]
    return jobs


def _warm_data(p: TextProfile, dm: TextDataModule, bank_dir: Path, coupling: str) -> Any:
    # The coupling (the refiner's) decides what the bank holds; only its size is set here.
    tf_size = p.tf_bank_size or len(dm.train_data())
    return WarmStartDataModule(
        dm,
        bank_size=tf_size if coupling == "teacher_forced" else p.bank_size,
        bank_dir=str(bank_dir),
        seed=p.seed,
        on_stale="error",
        progress=False,
    )


def _data(p: TextProfile) -> TextDataModule:
    return TextDataModule(
        p.source, seq_len=p.seq_len, vocab_size=p.vocab_size, batch_size=p.batch_size
    )


DRAFTS: dict[str, type[torch.nn.Module]] = {"ngram": NGramDraft, "lstm": LSTMDraft}


def make_draft(p: TextProfile, name: str, vocab: int) -> torch.nn.Module:
    return DRAFTS[name](vocab_size=vocab, seq_len=p.seq_len)


def train_draft(p: TextProfile, name: str, dm: TextDataModule) -> torch.nn.Module:
    L.seed_everything(p.seed, verbose=False)
    draft = make_draft(p, name, dm.tokenizer.vocab_size)
    closed_form = isinstance(draft, ClosedFormDraft)
    bench_trainer(1 if closed_form else p.lstm_steps).fit(draft, dm)
    return draft.eval()


def train_draft_job(p: TextProfile, name: str) -> dict[str, Any]:
    """Train one draft with gradient steps (in a worker process, one thread)."""
    torch.set_num_threads(1)
    quiet()
    start = time.perf_counter()
    draft = train_draft(p, name, _data(p))
    return {
        "label": f"draft {name}",
        "draft": name,
        "state_dict": draft.state_dict(),
        "train_seconds": time.perf_counter() - start,
    }


def build_refiner(
    p: TextProfile, job: TextJob, vocab: int, draft: torch.nn.Module | None
) -> DiscreteFlowMatching:
    net = TokenTransformer(vocab, p.seq_len, dim=p.dim, depth=p.depth, heads=p.heads)
    common: dict[str, Any] = dict(
        optimizer=lambda params: torch.optim.AdamW(params, lr=p.lr),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, p.train_steps),
        sample_shape=(p.seq_len,),
        sample_steps=p.reference_steps,
    )
    if job.method == "cold_dfm":
        return DiscreteFlowMatching(net, coupling=job.coupling, **common)
    assert draft is not None
    return WarmStartDiscreteFlowMatching(net, draft, t0=job.t0, coupling=job.coupling, **common)


def train_refiner(
    p: TextProfile, job: TextJob, draft_state: dict[str, Any] | None, bank_dir: Path
) -> dict[str, Any]:
    """Train one refiner (in a worker process, one thread)."""
    torch.set_num_threads(1)
    quiet()
    L.seed_everything(p.seed, verbose=False)
    dm = _data(p)
    vocab = dm.tokenizer.vocab_size
    draft = None
    if job.draft:
        draft = make_draft(p, job.draft, vocab)
        draft.load_state_dict(draft_state)
        draft.tokenizer_fingerprint = dm.tokenizer.fingerprint
    model = build_refiner(p, job, vocab, draft)
    data = dm if draft is None else _warm_data(p, dm, bank_dir, job.coupling)
    start = time.perf_counter()
    bench_trainer(p.train_steps, [EMAWeightAveraging(decay=p.ema_decay)]).fit(model, data)
    return {
        "job": job,
        "state_dict": model.state_dict(),
        "train_seconds": time.perf_counter() - start,
    }


class TextMetrics:
    """Every text metric of a set of decoded sequences; the Fréchet distance's real statistics
    (held-out test text) are computed once."""

    def __init__(self, real_texts: list[str]) -> None:
        self.features = MiniLMFeatures()
        self.frechet = text_frechet(self.features)
        for i in range(0, len(real_texts), 128):
            self.frechet.update(self.features.tokenize(real_texts[i : i + 128]), real=True)

    def __call__(self, texts: list[str]) -> dict[str, float]:
        self.frechet.reset()
        for i in range(0, len(texts), 128):
            self.frechet.update(self.features.tokenize(texts[i : i + 128]), real=False)
        ppl = TrigramPerplexity()
        ppl.update(texts)
        lm = ppl.compute()
        return {
            "quality": float(self.frechet.compute()),
            "perplexity": float(lm["perplexity"]),
            "oov_rate": float(lm["oov_rate"]),
            "distinct_2": distinct_n(texts, 2),
            "entropy": unigram_entropy(texts),
        }


def evaluate(
    p: TextProfile,
    model: DiscreteFlowMatching,
    job: TextJob,
    metrics: TextMetrics,
    decode: Any,
) -> tuple[list[dict[str, Any]], dict[int, list[str]]]:
    model.eval()
    torch.manual_seed(p.seed)
    warm = job.method == "ws_dfm"
    per_1k = 1000 / p.n_time
    draft = model.draw_source(p.n_eval) if warm else None
    draft_time, draft_s = (None, 0.0)
    if warm:
        draft_time, draft_s = timed(partial(model.draw_source, p.n_time), p.timing_repeats)
    grid = p.warm_grid if warm else sorted(set(p.cold_grid) | {p.reference_steps})
    rows, shown = [], {}
    for steps in grid:
        res, sec = sample_and_time(
            model, "euler", steps, p.n_eval, p.n_time, p.timing_repeats, draft, draft_time
        )
        texts = decode(res.samples.tolist())
        shown[steps] = texts[: p.n_show]
        rows.append(
            {
                "dataset": p.source,
                "method": job.method,
                "t0": job.t0,
                "coupling": job.coupling,
                **({"draft": job.draft} if warm else {}),
                "solver": "euler",
                "steps": steps,
                "nfe": res.nfe,
                **metrics(texts),
                # how much of the draft survives refinement (docs/design.md §1: every position
                # jumps at least once by t = 1, each to a draw from p(x1 | x_t, t))
                **({"draft_kept": float((res.samples == draft).float().mean())} if warm else {}),
                "seconds_per_1k": sec * per_1k,
                "draft_seconds_per_1k": draft_s * per_1k,
            }
        )
    return rows, shown


def _build_banks(
    p: TextProfile, dm: TextDataModule, draft: torch.nn.Module, bank_dir: Path, jobs: list[TextJob]
) -> None:
    """The banks of the draft's refiners (teacher-forced pairs and/or free drafts), built once
    through the DataModule before they train (each refiner's coupling decides what it holds)."""
    draft.tokenizer_fingerprint = dm.tokenizer.fingerprint  # as the refiners' copies carry it
    vocab = dm.tokenizer.vocab_size
    for job in jobs:
        _warm_data(p, dm, bank_dir, job.coupling).prepare_bank(build_refiner(p, job, vocab, draft))


def train_all(
    p: TextProfile, dm: TextDataModule, bank_dir: Path, progress: Any = None
) -> tuple[dict[str, torch.nn.Module], dict[str, float], list[dict[str, Any]]]:
    """Every draft and refiner: drafts with gradient steps train in the pool beside the cold
    flow; each draft's refiners are queued as soon as the draft and its banks are ready."""
    todo = text_jobs(p)
    drafts: dict[str, torch.nn.Module] = {}
    seconds: dict[str, float] = {}
    trained: list[dict[str, Any]] = []
    with WorkerPool(p.workers, progress, "drafts and refiners") as pool:

        def ready(name: str, draft: torch.nn.Module) -> None:
            drafts[name] = draft
            _build_banks(p, dm, draft, bank_dir, [j for j in todo if j.draft == name])
            for job in todo:
                if job.draft == name:
                    pool.submit(train_refiner, p, job, draft.state_dict(), bank_dir)

        closed = [n for n in p.drafts if issubclass(DRAFTS[n], ClosedFormDraft)]
        for name in p.drafts:
            if name not in closed:
                pool.submit(train_draft_job, p, name)
        for job in todo:
            if not job.draft:
                pool.submit(train_refiner, p, job, None, bank_dir)
        for name in closed:  # seconds to fit: here, while the pool trains
            start = time.perf_counter()
            draft = train_draft(p, name, dm)
            seconds[name] = time.perf_counter() - start
            ready(name, draft)
        for res in pool.results():
            if "job" in res:
                trained.append(res)
                continue
            draft = make_draft(p, res["draft"], dm.tokenizer.vocab_size)
            draft.load_state_dict(res["state_dict"])
            seconds[res["draft"]] = res["train_seconds"]
            ready(res["draft"], draft.eval())
    return drafts, seconds, sorted(trained, key=lambda r: todo.index(r["job"]))


def run_text(p: TextProfile, work_dir: Path, progress: Any = None) -> dict[str, Any]:
    quiet()
    start = time.perf_counter()
    dm = _data(p)
    tok = dm.tokenizer
    drafts, draft_seconds, trained = train_all(p, dm, work_dir / "banks", progress)
    phases = {"tokenizer, drafts, banks and training": time.perf_counter() - start}
    start = time.perf_counter()

    g = torch.Generator().manual_seed(p.seed)
    test, val = dm.test_data(), dm.val_data()
    real = tok.decode_batch(test[torch.randperm(len(test), generator=g)[: p.n_real]].tolist())
    held_out = tok.decode_batch(val[torch.randperm(len(val), generator=g)[: p.n_eval]].tolist())
    metrics = TextMetrics(real)
    etask = progress.add_task("evaluating", total=len(trained)) if progress else None
    rows: list[dict[str, Any]] = []
    samples: dict[str, list[str]] = {}
    models: dict[TextJob, DiscreteFlowMatching] = {}
    for res in trained:
        job = res["job"]
        model = models[job] = build_refiner(p, job, tok.vocab_size, drafts.get(job.draft))
        model.load_state_dict(res["state_dict"])
        job_rows, shown = evaluate(p, model, job, metrics, tok.decode_batch)
        rows += job_rows
        best = min(job_rows, key=lambda r: r["quality"]) if job.draft else job_rows[-1]
        ref = next((r for r in job_rows if r["steps"] == p.reference_steps), best)
        pick = best if job.draft else ref
        samples[f"{job.label} (NFE {pick['nfe']})"] = shown[pick["steps"]]
        if progress:
            progress.update(etask, advance=1, description=f"evaluated {job.label}")

    def resample(r: dict[str, Any], k: int) -> float:
        job = TextJob(r["method"], r["coupling"], r["t0"], r.get("draft", ""))
        torch.manual_seed(p.seed + k)
        res = models[job].sample(p.n_eval, steps=r["steps"])
        return metrics(tok.decode_batch(res.samples.tolist()))["quality"]

    seed_statistics(
        rows,
        resample,
        n_seeds=p.n_seeds,
        reference_steps=p.reference_steps,
        cold_method="cold_dfm",
        warm_method="ws_dfm",
        progress=progress,
    )
    for name, d in drafts.items():
        torch.manual_seed(p.seed)
        samples[f"{name} draft alone"] = tok.decode_batch(d.sample(p.n_show).tolist())
    return {
        "rows": rows,
        "cold_nfe_at_equal_step": cold_nfe_at_equal_step({*p.t0s, p.ablation_t0}, p.warm_grid),
        "real_vs_real": {p.source: metrics(held_out)["quality"]},
        "real_text_metrics": metrics(held_out),
        "draft_alone": {
            n: metrics(tok.decode_batch(d.sample(p.n_eval).tolist())) for n, d in drafts.items()
        },
        "draft_train_seconds": draft_seconds,
        "phase_seconds": {**phases, "evaluation": time.perf_counter() - start},
        "train_seconds": {r["job"].label: r["train_seconds"] for r in trained},
        "tokenizer": {"vocab_size": tok.vocab_size, "fingerprint": tok.fingerprint},
        "text_samples": samples,
        "profile_settings": asdict(p),
    }
