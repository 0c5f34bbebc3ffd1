import pytest
import torch
from helpers import quick_trainer, small_text_dm

from ws_fm.drafts import DraftCheckpoint, LSTMDraft, NGramDraft


@pytest.fixture
def dm(tmp_path):
    return small_text_dm(tmp_path)


@pytest.mark.parametrize("cls", [NGramDraft, LSTMDraft])
def test_text_drafts_train_and_sample_sequences_in_the_vocabulary(cls, dm, tmp_path):
    V = dm.tokenizer.vocab_size
    draft = cls(vocab_size=V, seq_len=16)
    quick_trainer(tmp_path, 5).fit(draft, dm)
    x = draft.sample(20, generator=torch.Generator().manual_seed(0))
    assert x.shape == (20, 16) and x.dtype == torch.long
    assert 0 <= int(x.min()) and int(x.max()) < V
    assert draft.tokenizer_fingerprint == dm.tokenizer.fingerprint


def test_trigram_draft_reproduces_a_deterministic_corpus():
    # Every continuation is unique in a periodic sequence: with no weight on the unigram, the
    # draft continues the period exactly after its first (unigram-drawn) token.
    period = torch.tensor([3, 1, 4, 5, 9, 2, 6])
    data = period.repeat(50)[: 7 * 40].reshape(-1, 14)
    draft = NGramDraft(vocab_size=10, seq_len=14, n=3, weights=(0.5, 0.5, 0.0), add_k=0.0)
    draft.fit(data)
    x = draft.sample(50, generator=torch.Generator().manual_seed(0))
    nxt = {int(a): int(b) for a, b in zip(period, period.roll(-1))}
    assert all(nxt[int(a)] == int(b) for row in x for a, b in zip(row[:-1], row[1:]))
    assert len(set(x[:, 0].tolist())) > 3  # the first token varies


def test_ngram_probabilities_interpolate_and_normalise():
    data = torch.tensor([[0, 1, 2, 0, 1, 2], [0, 1, 3, 0, 1, 3]])
    draft = NGramDraft(vocab_size=5, seq_len=6, weights=(0.5, 0.3, 0.2), add_k=1.0).fit(data)
    p = draft.next_token_probs(torch.tensor([[0, 1], [4, 4]]))
    torch.testing.assert_close(p.sum(1), torch.ones(2))
    uni = (torch.tensor([4.0, 4, 2, 2, 0]) + 1) / 17
    # Context (0, 1): trigram 2 and 3 half each; bigram after 1: 2 and 3 half each.
    want = 0.5 * torch.tensor([0, 0, 0.5, 0.5, 0]) + 0.3 * torch.tensor([0, 0, 0.5, 0.5, 0])
    torch.testing.assert_close(p[0], want + 0.2 * uni)
    # Unseen context (4, 4): only the unigram is left.
    torch.testing.assert_close(p[1], uni)


def test_ngram_checkpoint_round_trip_keeps_the_counts(dm, tmp_path):
    draft = NGramDraft(vocab_size=dm.tokenizer.vocab_size, seq_len=16)
    trainer = quick_trainer(tmp_path, 1)
    trainer.fit(draft, dm)
    trainer.save_checkpoint(tmp_path / "ngram.ckpt")
    loaded = DraftCheckpoint(str(tmp_path / "ngram.ckpt"), "ws_fm.drafts.NGramDraft")
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(loaded.sample(8, generator=g()), draft.sample(8, generator=g()))
    assert loaded.draft.tokenizer_fingerprint == dm.tokenizer.fingerprint


def test_text_draft_with_another_vocabulary_fails_before_training(dm, tmp_path):
    with pytest.raises(ValueError, match="does not match the data's tokenizer"):
        quick_trainer(tmp_path, 1).fit(LSTMDraft(vocab_size=17, seq_len=16), dm)


@pytest.mark.parametrize("cls", [NGramDraft, LSTMDraft])
def test_teacher_forced_drafts_follow_the_real_prefix(cls, dm, tmp_path):
    V = dm.tokenizer.vocab_size
    draft = cls(vocab_size=V, seq_len=16)
    quick_trainer(tmp_path, 30, max_epochs=-1).fit(draft, dm)
    x1 = dm.train_data()[:200]
    g = torch.Generator().manual_seed(0)
    forced = draft.teacher_force(x1, generator=g)
    free = draft.sample(200, generator=g)
    assert forced.shape == x1.shape and int(forced.max()) < V
    # Predicting each token from the real prefix agrees with x1 far more often than free samples
    # do (the small corpus is very regular, so the draft predicts it well).
    agree_forced = (forced == x1).float().mean()
    agree_free = (free == x1).float().mean()
    assert agree_forced > 0.3 and agree_forced > 3 * agree_free
