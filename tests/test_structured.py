"""The structured-text language, its metrics and the warm discrete samplers that keep a draft."""

import pytest
import torch
from torch import nn

from ws_fm.data import CopyChainLanguage, StructuredTextDataModule
from ws_fm.drafts import NGramDraft
from ws_fm.metrics import copied_fraction, distinct_ngrams, distinct_samples
from ws_fm.nets import TokenTransformer
from ws_fm.paths import MaskedPath, WarmStart
from ws_fm.refiners import DiscreteFlowMatching, WarmStartDiscreteFlowMatching
from ws_fm.solvers import discrete_euler

LANG = CopyChainLanguage(vocab_size=6, half_len=4, branching=2, seed=0)


def _valid_chain(lang, start=0):
    w = [start]
    for _ in range(lang.half_len - 1):
        w.append(int(lang.successors[w[-1], 0]))
    return w


# ----------------------------------------------------------------------------- the language
def test_hand_made_valid_sentence_passes_every_constraint():
    w = _valid_chain(LANG, 2)
    x = torch.tensor([w + w])
    assert LANG.is_valid(x).tolist() == [True]
    assert LANG.scores(x) == {"constraints": 1.0, "valid": 1.0, "copy": 1.0, "transitions": 1.0}


def test_hand_made_invalid_sentences_fail_the_right_constraints():
    w = _valid_chain(LANG, 1)
    h = LANG.half_len
    bad_copy = w + w[:-1] + [(w[-1] + 1) % 6]  # the last copy differs
    # a forbidden last transition inside the first half, copied faithfully to the second
    forbidden = next(b for b in range(6) if not LANG.allowed[w[-2], b])
    bad_trans = [*w[:-1], forbidden]
    bad_trans = bad_trans + bad_trans
    c = LANG.constraints(torch.tensor([bad_copy, bad_trans]))
    assert c.shape == (2, 3 * h - 2)
    # sentence 0: copy constraint h - 1 fails (and perhaps the last transition of the half)
    assert not c[0, h - 1] and c[0, : h - 1].all()
    # sentence 1: all copies hold; the last transition of each half fails, and only that
    assert c[1, :h].all() and (~c[1]).nonzero().flatten().tolist() == [2 * h - 2, 3 * h - 3]
    assert not LANG.is_valid(torch.tensor([bad_copy, bad_trans])).any()
    s = LANG.scores(torch.tensor([bad_trans]))
    assert s["valid"] == 0.0 and s["copy"] == 1.0
    assert s["constraints"] == pytest.approx(1 - 2 / (3 * h - 2))


def test_generator_yields_only_valid_sentences_of_the_whole_language():
    lang = CopyChainLanguage()
    x = lang.generate(5000, torch.Generator().manual_seed(1))
    assert x.shape == (5000, 24) and lang.is_valid(x).all()
    # every symbol starts some chain and every allowed successor occurs
    assert len(x[:, 0].unique()) == lang.vocab_size
    pairs = {(a, b) for row in x[:, :12].tolist() for a, b in zip(row, row[1:])}
    assert len(pairs) == lang.vocab_size * lang.branching


def test_random_tokens_score_low_and_decode_and_bad_shapes_are_refused():
    lang = CopyChainLanguage()
    noise = torch.randint(16, (2000, 24), generator=torch.Generator().manual_seed(0))
    s = lang.scores(noise)
    assert s["valid"] == 0.0
    assert s["copy"] == pytest.approx(1 / 16, abs=0.01)
    assert s["transitions"] == pytest.approx(3 / 16, abs=0.01)
    assert LANG.decode(torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3]])) == ["abcd | abcd"]
    with pytest.raises(ValueError, match="shape"):
        lang.scores(noise[:, :10])
    with pytest.raises(ValueError, match="MASK"):
        lang.scores(torch.full((2, 24), 16))


def test_language_settings_are_checked():
    with pytest.raises(ValueError, match="branching"):
        CopyChainLanguage(vocab_size=4, branching=5)
    with pytest.raises(ValueError, match="half_len"):
        CopyChainLanguage(half_len=1)


def test_datamodule_splits_are_valid_and_reproducible():
    dm = StructuredTextDataModule(n_train=500, n_val=50, n_test=100, batch_size=32)
    train, test = dm.train_data(), dm.test_data()
    assert train.shape == (500, 24) and test.shape == (100, 24)
    assert dm.language.is_valid(torch.cat([train, test, dm.val_data()])).all()
    again = StructuredTextDataModule(n_train=500, n_val=50, n_test=100, batch_size=32)
    assert torch.equal(again.train_data(), train)
    assert next(iter(dm.train_dataloader())).shape == (32, 24)


# ----------------------------------------------------------------------------- metrics
def test_copied_and_distinct_metrics():
    train = torch.tensor([[0, 1, 2], [3, 4, 5]])
    samples = torch.tensor([[0, 1, 2], [0, 1, 3], [3, 4, 5], [3, 4, 5]])
    assert copied_fraction(samples, train) == 0.75
    assert copied_fraction(torch.tensor([[9, 9, 9]]), train) == 0.0
    assert distinct_samples(samples) == 0.75
    # bigrams: 01 12 01 13 34 45 34 45 -> 5 unique of 8
    assert distinct_ngrams(samples, 2) == 5 / 8
    with pytest.raises(ValueError, match="length"):
        copied_fraction(samples[:, :2], train)


# ----------------------------------------------------------------------------- samplers
class TruthNet(nn.Module):
    """A stub refiner: predicts ``truth`` with probability ``p_true`` at every position (the
    rest spread evenly), whatever it is shown; records the committed flags it receives."""

    def __init__(self, truth, vocab_size, p_true=1.0, committed_input=True):
        super().__init__()
        self.truth, self.vocab_size, self.p_true = truth, vocab_size, p_true
        self.committed_input = committed_input
        self.seen: list[torch.Tensor] = []
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, t, committed=None):
        if committed is not None:
            self.seen.append(committed.clone())
        rest = (1 - self.p_true) / (self.vocab_size - 1)
        p = torch.full((*x.shape, self.vocab_size), rest)
        p.scatter_(2, self.truth.expand(x.shape[0], -1)[..., None], self.p_true)
        return p.clamp_min(1e-12).log()


def _refiner(net, sampler, t0=0.8, threshold=0.5):
    draft = NGramDraft(vocab_size=net.vocab_size, seq_len=net.truth.shape[1])
    draft.fit(net.truth.repeat(4, 1))
    return WarmStartDiscreteFlowMatching(
        net,
        draft,
        t0=t0,
        coupling="independent",
        sampler=sampler,
        threshold=threshold,
        sample_shape=(net.truth.shape[1],),
    )


@pytest.mark.parametrize("sampler", ["committed", "gated"])
def test_perfect_draft_passes_through_unchanged(sampler):
    truth = torch.tensor([[int(v) for v in _valid_chain(LANG, 3) * 2]])
    net = TruthNet(truth, LANG.vocab_size, p_true=1.0)
    model = _refiner(net, sampler)
    res = model.sample(16, steps=5, source=truth.repeat(16, 1), seed=0)
    assert torch.equal(res.samples, truth.repeat(16, 1))
    assert res.nfe == 5  # counted on the wrapped network's calls


@pytest.mark.parametrize("sampler", ["committed", "gated"])
def test_one_corrupted_token_is_fixed_by_a_refiner_that_predicts_the_truth(sampler):
    truth = torch.tensor([[int(v) for v in _valid_chain(LANG, 0) * 2]])
    draft = truth.repeat(16, 1)
    draft[:, 5] = (draft[:, 5] + 1) % LANG.vocab_size  # breaks a copy constraint
    assert not LANG.is_valid(draft).any()
    net = TruthNet(truth, LANG.vocab_size, p_true=1.0)
    res = _refiner(net, sampler).sample(16, steps=3, source=draft, seed=1)
    assert torch.equal(res.samples, truth.repeat(16, 1))
    assert LANG.is_valid(res.samples).all() and res.nfe == 3


def test_gated_sampler_keeps_confident_draft_tokens_that_plain_sampler_redraws():
    # A refiner 80 % sure of the truth: redrawing a right draft token loses it 20 % of the time;
    # the gated sampler keeps every right draft token (p = 0.8 >= threshold) and redraws only
    # the wrong one (p = 0.04 < threshold).
    truth = torch.tensor([[int(v) for v in _valid_chain(LANG, 4) * 2]])
    draft = truth.repeat(200, 1)
    draft[:, 2] = (draft[:, 2] + 1) % LANG.vocab_size
    net = TruthNet(truth, LANG.vocab_size, p_true=0.8)
    out = {}
    for sampler in ("jump", "committed", "gated"):
        res = _refiner(net, sampler, t0=0.9).sample(200, steps=4, source=draft, seed=2)
        right = torch.ones(truth.shape[1], dtype=torch.bool)
        right[2] = False
        kept = (res.samples[:, right] == draft[:, right]).float().mean()
        out[sampler] = (float(kept), float((res.samples[:, 2] == truth[0, 2]).float().mean()))
    # gated: every right draft token kept (the masked 10 % are redrawn, right 80 % of the time)
    assert out["gated"][0] > 0.97
    assert out["committed"][0] < 0.85 and out["jump"][0] < 0.85
    # the wrong token is fixed as often as the refiner's confidence allows
    assert out["gated"][1] == pytest.approx(0.8, abs=0.08)


def test_committed_flags_grow_and_committed_positions_never_change():
    truth = torch.tensor([[int(v) for v in _valid_chain(LANG, 2) * 2]])
    net = TruthNet(truth, LANG.vocab_size, p_true=0.5)
    model = _refiner(net, "committed", t0=0.5)
    res = model.sample(32, steps=6, source=truth.repeat(32, 1), return_trajectory=True, seed=3)
    flags = torch.stack(net.seen)  # (steps, B, L) committed flags the network received
    assert not flags[0].any()  # nothing is committed at t0
    assert (flags[1:].int() >= flags[:-1].int()).all()  # monotone
    traj = res.trajectory
    for k in range(1, len(flags)):
        # what was committed before step k stays as it was
        assert torch.equal(traj[k + 1][flags[k]], traj[k][flags[k]])


def test_plain_backbone_gets_no_committed_input_and_refuses_one():
    net = TokenTransformer(6, 8, dim=16, depth=1, heads=2)
    with pytest.raises(ValueError, match="committed_input"):
        net(torch.zeros(2, 8, dtype=torch.long), torch.rand(2), committed=torch.zeros(2, 8).bool())
    flagged = TokenTransformer(6, 8, dim=16, depth=1, heads=2, committed_input=True)
    x, t = torch.zeros(2, 8, dtype=torch.long), torch.rand(2)
    a = flagged(x, t, committed=torch.zeros(2, 8, dtype=torch.bool))
    b = flagged(x, t, committed=torch.ones(2, 8, dtype=torch.bool))
    assert torch.allclose(flagged(x, t), a) and not torch.allclose(a, b)


def test_training_passes_the_paths_committed_positions_to_the_backbone():
    net = TokenTransformer(6, 8, dim=16, depth=1, heads=2, committed_input=True)
    seen = []
    net.register_forward_hook(lambda m, args, kw, out: seen.append((args[0], kw)), with_kwargs=True)
    model = DiscreteFlowMatching(net, sample_shape=(8,))
    x1 = LANG.generate(64, torch.Generator().manual_seed(0))
    model.flow_matching_loss(x1)
    x_t, kw = seen[-1]
    # on the cold path the committed positions are exactly the revealed (not MASK) ones
    assert kw["committed"].dtype == torch.bool
    assert torch.equal(kw["committed"], x_t != 6) and 0 < kw["committed"].sum() < x1.numel()


def test_warm_path_marks_revealed_positions_not_right_draft_tokens():
    path = WarmStart(MaskedPath(6), t0=0.5)
    x1 = LANG.generate(64, torch.Generator().manual_seed(0))
    ps = path.sample(x1.clone(), x1, torch.full((64,), 0.75))  # a perfect draft
    # every position shows x1, but only about half of them are revealed (committed)
    assert torch.equal(ps.x_t[ps.committed], x1[ps.committed])
    frac = float(ps.committed.float().mean())
    assert 0.4 < frac < 0.6


def test_sampler_arguments_are_checked():
    net = TokenTransformer(6, 8, dim=16, depth=1, heads=2)
    with pytest.raises(ValueError, match="sampler"):
        DiscreteFlowMatching(net, sampler="greedy")
    with pytest.raises(ValueError, match="threshold"):
        DiscreteFlowMatching(net, sampler="gated", threshold=0.0)
    with pytest.raises(ValueError, match="mask_id"):
        discrete_euler(
            lambda x, t: torch.zeros(*x.shape, 6), torch.zeros(1, 8).long(), 0.5, 2, sampler="gated"
        )


def test_masked_warm_start_sigma_sets_how_much_of_the_draft_is_masked_at_t0():
    draft = LANG.generate(256, torch.Generator().manual_seed(5))
    net = TruthNet(draft[:1], LANG.vocab_size)
    masks = {}
    for sigma in (0.0, 0.5, 1.0):
        model = WarmStartDiscreteFlowMatching(
            net, _refiner(net, "gated").draft, t0=0.8, coupling="independent", sigma=sigma
        )
        x_t0 = model.path.start(draft, model.path.draw_noise(draft))
        masks[sigma] = float((x_t0 == LANG.vocab_size).float().mean())
        kept = x_t0 != LANG.vocab_size
        assert torch.equal(x_t0[kept], draft[kept])
    assert masks[0.0] == 0.0  # the whole draft
    assert masks[0.5] == pytest.approx(0.1, abs=0.02)
    assert masks[1.0] == pytest.approx(0.2, abs=0.02)  # the cold path's 1 - kappa_t0
    with pytest.raises(ValueError, match="sigma"):
        WarmStartDiscreteFlowMatching(net, model.draft, t0=0.8, sigma=1.5)
