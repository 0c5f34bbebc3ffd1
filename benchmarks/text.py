"""The text task: n-gram and LSTM drafts, cold and warm discrete flows on a token transformer.

Scored by the Fréchet distance of MiniLM embeddings to held-out text (the quality), with trigram
perplexity and OOV rate, distinct-2, unigram entropy and, for warm rows, the fraction of draft
tokens a refiner keeps.  Its extras are every metric on real held-out text and on the drafts
alone, and decoded samples per method.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ws_fm.data import TextDataModule
from ws_fm.drafts import LSTMDraft, NGramDraft
from ws_fm.metrics.text import (
    MiniLMFeatures,
    TrigramPerplexity,
    distinct_n,
    text_frechet,
    unigram_entropy,
)
from ws_fm.nets import TokenTransformer

if TYPE_CHECKING:
    from .engine import Profile, Run

__all__ = ["TextTask", "TextMetrics"]

DRAFTS: dict[str, type[nn.Module]] = {"ngram": NGramDraft, "lstm": LSTMDraft}


@lru_cache(maxsize=4)
def _data(source: str, seq_len: int, vocab_size: int, batch_size: int) -> TextDataModule:
    # one tokenizer per process (trained once, then read from its cache)
    return TextDataModule(source, seq_len=seq_len, vocab_size=vocab_size, batch_size=batch_size)


@dataclass(frozen=True)
class TextTask:
    source: str = "janeausten"
    seq_len: int = 32
    vocab_size: int = 4000
    dim: int = 128
    depth: int = 2
    heads: int = 4
    # the refiners' backbone takes the committed positions (ws_fm.nets.TokenTransformer)
    committed_input: bool = False
    n_real: int = 300  # held-out sequences for the Fréchet distance's real statistics
    n_show: int = 10  # decoded samples per method in the markdown
    # calibrate_t0 by the embedding Fréchet distance (else token histograms, sliced Wasserstein)
    calibration_in_embeddings: bool = True
    calibration_n: int = 500  # sequences per set
    calibration_repeats: int = 2  # noise draws per grid point
    metric: str = "frechet_minilm"

    def datasets(self) -> tuple[str, ...]:
        return (self.source,)

    def datamodule(self, p: Profile, dataset: str) -> TextDataModule:
        return _data(dataset, self.seq_len, self.vocab_size, p.batch_size)

    def vocab(self, p: Profile) -> int:
        return self.datamodule(p, self.source).tokenizer.vocab_size

    def network(self, p: Profile, dataset: str) -> nn.Module:
        return TokenTransformer(
            self.vocab(p),
            self.seq_len,
            dim=self.dim,
            depth=self.depth,
            heads=self.heads,
            committed_input=self.committed_input,
        )

    def draft(self, p: Profile, dataset: str, name: str) -> nn.Module:
        if name not in DRAFTS:
            raise ValueError(f"unknown text draft {name!r}; choose one of {', '.join(DRAFTS)}")
        draft = DRAFTS[name](vocab_size=self.vocab(p), seq_len=self.seq_len)
        draft.tokenizer_fingerprint = self.datamodule(p, dataset).tokenizer.fingerprint
        return draft

    def refiner_kwargs(self, p: Profile) -> dict[str, Any]:
        return {"sample_shape": (self.seq_len,), "sample_steps": p.reference_steps}

    def decode(self, p: Profile, ids: torch.Tensor) -> list[str]:
        return self.datamodule(p, self.source).tokenizer.decode_batch(ids.tolist())

    def held_out(self, p: Profile) -> tuple[list[str], list[str]]:
        """Decoded test sequences (the real statistics) and validation sequences (real text
        scored like a method)."""
        dm = self.datamodule(p, self.source)
        g = torch.Generator().manual_seed(p.seed)
        test, val = dm.test_data(), dm.val_data()
        real = self.decode(p, test[torch.randperm(len(test), generator=g)[: self.n_real]])
        other = self.decode(p, val[torch.randperm(len(val), generator=g)[: p.n_eval]])
        return real, other

    def calibration_settings(self, p: Profile, dataset: str) -> dict[str, Any]:
        """The embedding Fréchet distance (the quality metric's space: MiniLM embeddings of the
        partly masked sentences, ``MASK`` as ``[MASK]``) on ``calibration_n`` sequences per
        set and ``calibration_repeats`` noise draws (MiniLM embeds ~350 sentences/s on two
        CPU cores; a curve embeds 3 x n x repeats sentences per grid point)."""
        if not self.calibration_in_embeddings:
            return {}
        from ws_fm.metrics.text import MaskedTextEmbedding

        from .engine import evaluator

        tokenizer = self.datamodule(p, dataset).tokenizer
        return {
            "features": MaskedTextEmbedding(tokenizer, evaluator(p, self.source).features),
            "distance": "frechet",
            "n": self.calibration_n,
            "repeats": self.calibration_repeats,
        }

    def evaluator(self, p: Profile, dataset: str) -> TextMetrics:
        return TextMetrics(self.held_out(p)[0], lambda ids: self.decode(p, ids))

    def extras(self, p: Profile, run: Run) -> dict[str, Any]:
        from .engine import evaluator

        metrics = evaluator(p, self.source)
        held_out = metrics.texts(self.held_out(p)[1])
        tok = self.datamodule(p, self.source).tokenizer
        return {
            "real_vs_real": {self.source: held_out["quality"]},
            "real_text_metrics": held_out,
            "draft_alone": {
                name: metrics(d.sample(p.n_eval), None) for (_, name), d in run.drafts.items()
            },
            "tokenizer": {"vocab_size": tok.vocab_size, "fingerprint": tok.fingerprint},
            "text_samples": self.shown(p, run),
        }

    def shown(self, p: Profile, run: Run) -> dict[str, list[str]]:
        """``n_show`` decoded samples per refiner (the reference budget for cold flows, the
        best-scoring NFE for warm ones) and per draft alone, each from a fixed seed."""
        out: dict[str, list[str]] = {}
        for job in run.models:
            rows = [r for r in run.rows if run.job_of(r) == job and r["solver"] == "euler"]
            pick = (
                min(rows, key=lambda r: r["quality"])
                if job.draft
                else next(r for r in rows if r["steps"] == p.reference_steps)
            )
            out[f"{job.label} (NFE {pick['nfe']})"] = self.decode(p, run.sample(pick, self.n_show))
        for (_, name), d in run.drafts.items():
            torch.manual_seed(p.seed)
            out[f"{name} draft alone"] = self.decode(p, d.sample(self.n_show))
        return out


class TextMetrics:
    """Every text metric of a set of sequences; the Fréchet distance's real statistics (held-out
    test text) are computed once."""

    def __init__(self, real_texts: list[str], decode: Any) -> None:
        self.features, self.decode = MiniLMFeatures(), decode
        self.frechet = text_frechet(self.features)
        for i in range(0, len(real_texts), 128):
            self.frechet.update(self.features.tokenize(real_texts[i : i + 128]), real=True)

    def frechet_of(self, texts: list[str]) -> float:
        self.frechet.reset()
        for i in range(0, len(texts), 128):
            self.frechet.update(self.features.tokenize(texts[i : i + 128]), real=False)
        return float(self.frechet.compute())

    def quality(self, samples: torch.Tensor) -> float:
        return self.frechet_of(self.decode(samples))

    def texts(self, texts: list[str]) -> dict[str, float]:
        ppl = TrigramPerplexity()
        ppl.update(texts)
        lm = ppl.compute()
        return {
            "quality": self.frechet_of(texts),
            "perplexity": float(lm["perplexity"]),
            "oov_rate": float(lm["oov_rate"]),
            "distinct_2": distinct_n(texts, 2),
            "entropy": unigram_entropy(texts),
        }

    def __call__(self, samples: torch.Tensor, source: torch.Tensor | None) -> dict[str, float]:
        out = self.texts(self.decode(samples))
        if source is not None:
            # how much of the draft survives refinement (docs/design.md §1: every position
            # jumps at least once by t = 1, each to a draw from p(x1 | x_t, t))
            out["draft_kept"] = float((samples.cpu() == source.cpu()).float().mean())
        return out
