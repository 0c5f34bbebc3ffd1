import pytest
import torch
from helpers import quick_trainer, small_text_dm

from ws_fm.data import WarmStartDataModule
from ws_fm.drafts import NGramDraft
from ws_fm.nets import TokenTransformer
from ws_fm.refiners import DiscreteFlowMatching, WarmStartDiscreteFlowMatching


def _net(V, L=16):
    return TokenTransformer(V, L, dim=32, depth=1, heads=2)


@pytest.fixture
def dm(tmp_path):
    return small_text_dm(tmp_path)


def test_token_transformer_logits_exclude_mask():
    net = _net(11)
    out = net(torch.full((3, 16), 11), torch.rand(3))
    assert out.shape == (3, 16, 11)


def test_cold_discrete_fit_and_sample_with_counted_nfe(dm, tmp_path):
    V = dm.tokenizer.vocab_size
    model = DiscreteFlowMatching(_net(V))
    before = [p.clone() for p in model.parameters()]
    quick_trainer(tmp_path, 3).fit(model, dm)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    res = model.sample(5, steps=7)
    assert res.nfe == 7 and res.samples.shape == (5, 16)
    assert int(res.samples.max()) < V  # no MASK left
    assert model.sample(5, step_size=0.25).nfe == 4


def test_warm_discrete_refiner_trains_on_the_bank_and_needs_fewer_steps(dm, tmp_path):
    V = dm.tokenizer.vocab_size
    draft = NGramDraft(vocab_size=V, seq_len=16).fit(dm.train_data())
    model = WarmStartDiscreteFlowMatching(_net(V), draft, t0=0.8)
    wdm = WarmStartDataModule(dm, bank_size=64, bank_dir=str(tmp_path / "banks"))
    quick_trainer(tmp_path, 3).fit(model, wdm)
    assert wdm.builds == 1
    # Same step size as a 100-step cold flow: 20 network evaluations instead of 100.
    assert model.sample(4, step_size=0.01).nfe == 20
    # t0 = 0 is the cold flow: all-MASK start.
    assert (
        WarmStartDiscreteFlowMatching(_net(V), draft, t0=0.0).path.start(
            draft.sample(4), torch.zeros(2, 4, 16)
        )
        == V
    ).all()


def test_refiner_rejects_a_draft_with_another_tokenizer(dm, tmp_path):
    V = dm.tokenizer.vocab_size
    draft = NGramDraft(vocab_size=V, seq_len=16).fit(dm.train_data())
    draft.tokenizer_fingerprint = "0" * 64  # as if trained on another corpus
    model = WarmStartDiscreteFlowMatching(_net(V), draft, t0=0.8)
    wdm = WarmStartDataModule(dm, bank_size=32, bank_dir=str(tmp_path / "banks"))
    with pytest.raises(ValueError, match="another tokenizer"):
        quick_trainer(tmp_path, 1).fit(model, wdm)


def test_refiner_rejects_a_network_of_another_vocabulary(dm, tmp_path):
    with pytest.raises(ValueError, match="set net vocab_size to"):
        quick_trainer(tmp_path, 1).fit(DiscreteFlowMatching(_net(50)), dm)
    with pytest.raises(ValueError, match="coupling"):
        DiscreteFlowMatching(_net(50), coupling="nearest_neighbour")
    with pytest.raises(ValueError, match="vocab_size"):
        DiscreteFlowMatching(torch.nn.Linear(2, 2))


def test_minibatch_ot_on_tokens_minimises_hamming_distance():
    from ws_fm.couplings import optimal_assignment

    x1 = torch.randint(0, 9, (6, 10))
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    source = x1[perm].clone()
    source[:, 0] = 9  # one position differs everywhere
    assert torch.equal(optimal_assignment(source, x1), perm)


def test_teacher_forced_bank_pairs_each_sequence_with_its_forced_draft(dm, tmp_path):
    V = dm.tokenizer.vocab_size
    draft = NGramDraft(vocab_size=V, seq_len=16).fit(dm.train_data())
    model = WarmStartDiscreteFlowMatching(_net(V), draft, t0=0.8, coupling="teacher_forced")
    # The DataModule has no coupling setting: it asks the model's coupling what to store.
    wdm = WarmStartDataModule(dm, bank_size=10_000, bank_dir=str(tmp_path / "banks"))
    quick_trainer(tmp_path, 2).fit(model, wdm)
    train = dm.train_data()
    assert len(wdm.bank) == len(train) and wdm.bank.meta["coupling"] == "teacher_forced"
    batch = next(iter(wdm.train_dataloader()))
    assert batch["paired"] and batch["x1"].shape == batch["source"].shape
    # Pairs, not random partners: the forced draft agrees with its own x1 far above chance.
    assert (batch["source"] == batch["x1"]).float().mean() > 0.3
    assert model.sample(3, steps=2).nfe == 2


def test_teacher_forced_pairs_are_refused_in_the_batch(dm, tmp_path):
    V = dm.tokenizer.vocab_size
    draft = NGramDraft(vocab_size=V, seq_len=16).fit(dm.train_data())
    model = WarmStartDiscreteFlowMatching(_net(V), draft, t0=0.8, coupling="teacher_forced")
    with pytest.raises(ValueError, match="precomputed in the sample bank"):
        quick_trainer(tmp_path, 1).fit(model, dm)  # a plain DataModule: no bank, no pairs


def test_precomputed_pairs_for_an_in_batch_coupling_are_refused(dm):
    V = dm.tokenizer.vocab_size
    draft = NGramDraft(vocab_size=V, seq_len=16).fit(dm.train_data())
    model = WarmStartDiscreteFlowMatching(_net(V), draft, t0=0.8, coupling="minibatch_ot")
    x1 = dm.train_data()[:4]
    with pytest.raises(ValueError, match="precomputed pairs but the coupling"):
        model.path_sample({"x1": x1, "source": x1, "paired": True})
