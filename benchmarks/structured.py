"""The structured-text task: a token language whose validity is checked exactly.

The data are sentences of :class:`ws_fm.data.CopyChainLanguage` (a chain over a few symbols with
a local successor rule, written twice); the quality of a set of samples is the fraction of the
language's constraints they satisfy (higher is better), with the fraction of fully valid
samples, the copy and transition fractions, distinct token bigrams, distinct samples and the
fraction of samples found verbatim in the training set beside it, so that memorising cannot pass
for validity.  Drafts: the trigram and LSTM drafts of the text task, trained on the same
sentences; their scores alone are an extra of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ws_fm.data import StructuredTextDataModule
from ws_fm.drafts import LSTMDraft, NGramDraft
from ws_fm.metrics import copied_fraction, distinct_ngrams, distinct_samples
from ws_fm.nets import TokenTransformer

if TYPE_CHECKING:
    from .engine import Profile, Run

__all__ = ["StructuredTextTask", "StructuredMetrics"]

DRAFTS: dict[str, type[nn.Module]] = {"ngram": NGramDraft, "lstm": LSTMDraft}


@lru_cache(maxsize=4)
def _data(
    vocab_size: int, half_len: int, branching: int, n_train: int, batch_size: int
) -> StructuredTextDataModule:
    return StructuredTextDataModule(
        vocab_size, half_len, branching, n_train=n_train, batch_size=batch_size
    )


@dataclass(frozen=True)
class StructuredTextTask:
    vocab_size: int = 16
    half_len: int = 8
    branching: int = 3
    n_train: int = 20_000
    dim: int = 128
    depth: int = 3
    heads: int = 4
    # the refiners' backbone takes the committed positions (ws_fm.nets.TokenTransformer)
    committed_input: bool = True
    n_show: int = 8  # decoded samples per method in the markdown
    metric: str = "constraints satisfied (fraction)"

    def datasets(self) -> tuple[str, ...]:
        return ("copychain",)

    def datamodule(self, p: Profile, dataset: str) -> StructuredTextDataModule:
        return _data(self.vocab_size, self.half_len, self.branching, self.n_train, p.batch_size)

    @property
    def seq_len(self) -> int:
        return 2 * self.half_len

    def network(self, p: Profile, dataset: str) -> nn.Module:
        return TokenTransformer(
            self.vocab_size,
            self.seq_len,
            dim=self.dim,
            depth=self.depth,
            heads=self.heads,
            committed_input=self.committed_input,
        )

    def draft(self, p: Profile, dataset: str, name: str) -> nn.Module:
        if name not in DRAFTS:
            raise ValueError(f"unknown token draft {name!r}; choose one of {', '.join(DRAFTS)}")
        return DRAFTS[name](vocab_size=self.vocab_size, seq_len=self.seq_len)

    def refiner_kwargs(self, p: Profile) -> dict[str, Any]:
        return {"sample_shape": (self.seq_len,), "sample_steps": p.reference_steps}

    def evaluator(self, p: Profile, dataset: str) -> StructuredMetrics:
        return StructuredMetrics(self.datamodule(p, dataset))

    def extras(self, p: Profile, run: Run) -> dict[str, Any]:
        from .engine import evaluator

        metrics = evaluator(p, "copychain")
        dm = self.datamodule(p, "copychain")
        torch.manual_seed(p.seed)
        drafts = {name: d.sample(p.n_eval) for (_, name), d in run.drafts.items()}
        return {
            "structured": {
                "language": repr(dm.language),
                "num_constraints": dm.language.num_constraints,
                "sentences_in_language": dm.vocab_size
                * dm.language.branching ** (self.half_len - 1),
                "held_out": metrics(dm.test_data()[: p.n_eval], None),
            },
            "draft_alone": {name: metrics(x, None) for name, x in drafts.items()},
            "text_samples": self.shown(p, run, drafts),
        }

    def shown(self, p: Profile, run: Run, drafts: dict[str, torch.Tensor]) -> dict[str, list[str]]:
        """``n_show`` decoded samples per refiner (the reference budget for cold flows, the
        best-scoring NFE for warm ones) and per draft alone."""
        lang = self.datamodule(p, "copychain").language
        out: dict[str, list[str]] = {}
        for job in run.models:
            rows = [r for r in run.rows if run.job_of(r) == job and r["solver"] == "euler"]
            pick = (
                max(rows, key=lambda r: r["quality"])
                if job.draft
                else next(r for r in rows if r["steps"] == p.reference_steps)
            )
            x = run.sample(pick, self.n_show)
            marks = ["valid" if v else "invalid" for v in lang.is_valid(x).tolist()]
            out[f"{job.label} (NFE {pick['nfe']})"] = [
                f"{s}  [{m}]" for s, m in zip(lang.decode(x), marks)
            ]
        for name, x in drafts.items():
            x = x[: self.n_show]
            marks = ["valid" if v else "invalid" for v in lang.is_valid(x).tolist()]
            out[f"{name} draft alone"] = [f"{s}  [{m}]" for s, m in zip(lang.decode(x), marks)]
        return out


class StructuredMetrics:
    """Every structured-text metric of a set of samples (the quality: constraints satisfied)."""

    def __init__(self, data: StructuredTextDataModule) -> None:
        self.language, self.train = data.language, data.train_data()

    def quality(self, samples: torch.Tensor) -> float:
        return self.language.scores(samples)["constraints"]

    def __call__(self, samples: torch.Tensor, source: torch.Tensor | None) -> dict[str, float]:
        s = self.language.scores(samples)
        out = {
            "quality": s["constraints"],
            "valid": s["valid"],
            "copy": s["copy"],
            "transitions": s["transitions"],
            "distinct_2": distinct_ngrams(samples, 2),
            "distinct_samples": distinct_samples(samples),
            "copied": copied_fraction(samples, self.train),
        }
        if source is not None:
            # how much of the draft survives refinement
            out["draft_kept"] = float((samples.cpu() == source.cpu()).float().mean())
        return out
