import pytest
import torch
from helpers import quick_trainer

from ws_fm.data import ImageDataModule, SampleBank, WarmStartDataModule
from ws_fm.drafts import GaussianDraft, VAEDraft
from ws_fm.nets import UNet
from ws_fm.refiners import FlowMatching, WarmStartFlowMatching


def _net():
    return UNet(channels=8, channel_mults=(1,))


def test_warm_refiner_trains_on_banked_drafts(tmp_path):
    model = WarmStartFlowMatching(_net(), GaussianDraft((1, 8, 8)), t0=0.5)
    dm = WarmStartDataModule(
        ImageDataModule("digits", batch_size=16), bank_size=200, bank_dir=tmp_path
    )
    quick_trainer(tmp_path).fit(model, dm)
    assert dm.bank is not None and len(dm.bank) == 200 and dm.builds == 1
    batch = next(iter(dm.train_dataloader()))
    assert batch["x1"].shape == batch["source"].shape == (16, 1, 8, 8)
    # The banked drafts are the draft's own samples (same mean as a fresh draw).
    fresh = model.draft.sample(2000).mean()
    assert abs(float(dm.bank.column("source", range(200)).mean() - fresh)) < 0.05


def test_cold_refiner_ignores_the_drafts(tmp_path):
    dm = WarmStartDataModule(
        ImageDataModule("digits", batch_size=16), bank_size=100, bank_dir=tmp_path
    )
    quick_trainer(tmp_path).fit(FlowMatching(_net()), dm)
    assert dm.bank is None and dm.builds == 0 and not list(tmp_path.glob("*-100"))
    assert isinstance(next(iter(dm.train_dataloader())), torch.Tensor)


def test_nearest_neighbour_bank_serves_precomputed_pairs(tmp_path):
    model = WarmStartFlowMatching(
        _net(), GaussianDraft((1, 8, 8)), t0=0.5, coupling="nearest_neighbour"
    )
    dm = WarmStartDataModule(
        ImageDataModule("digits", batch_size=16),
        bank_size=64,
        bank_dir=tmp_path,
    )
    quick_trainer(tmp_path).fit(model, dm)
    batch = next(iter(dm.train_dataloader()))
    assert batch["paired"] is True
    train = dm.train_data().reshape(len(dm.train_data()), -1)
    nearest = train[torch.cdist(batch["source"].reshape(16, -1), train).argmin(1)]
    torch.testing.assert_close(batch["x1"].reshape(16, -1), nearest)


def test_bank_from_another_draft_is_refused_before_training(tmp_path):
    dm_args = dict(bank_size=50, bank_dir=tmp_path, bank_name="bank", on_stale="error")
    first = WarmStartFlowMatching(_net(), GaussianDraft((1, 8, 8), n_components=5), t0=0.5)
    quick_trainer(tmp_path, steps=1).fit(
        first, WarmStartDataModule(ImageDataModule("digits", batch_size=16), **dm_args)
    )
    other = WarmStartFlowMatching(_net(), VAEDraft((1, 8, 8)), t0=0.5)
    with pytest.raises(ValueError, match="built by another generator"):
        quick_trainer(tmp_path).fit(
            other, WarmStartDataModule(ImageDataModule("digits", batch_size=16), **dm_args)
        )
    assert SampleBank(tmp_path / "bank").meta["generator_class"].endswith("GaussianDraft")


def test_draft_with_the_wrong_shape_is_refused(tmp_path):
    class Wrong(torch.nn.Module):
        def sample(self, n, generator=None):
            return torch.zeros(n, 1, 28, 28)

    model = WarmStartFlowMatching(_net(), Wrong(), t0=0.5)
    dm = WarmStartDataModule(
        ImageDataModule("digits", batch_size=16), bank_size=20, bank_dir=tmp_path
    )
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\) but the data has shape \(1, 8, 8\)"):
        quick_trainer(tmp_path).fit(model, dm)


def test_coupling_mismatch_cannot_be_expressed(tmp_path):
    """Finding: coupling='minibatch_ot' with WarmStartDataModule(nearest_neighbour=True) used to
    train on nearest-neighbour pairs silently.  The DataModule now has no coupling flag: it asks
    the model's coupling, so an OT refiner gets unpaired batches that its coupling pairs."""
    import inspect

    params = inspect.signature(WarmStartDataModule).parameters
    assert "nearest_neighbour" not in params and "teacher_forced" not in params
    with pytest.raises(TypeError):
        WarmStartDataModule(ImageDataModule("digits", batch_size=16), nearest_neighbour=True)
    model = WarmStartFlowMatching(_net(), GaussianDraft((1, 8, 8)), t0=0.5, coupling="minibatch_ot")
    dm = WarmStartDataModule(
        ImageDataModule("digits", batch_size=16), bank_size=64, bank_dir=tmp_path
    )
    quick_trainer(tmp_path, steps=1).fit(model, dm)
    batch = next(iter(dm.train_dataloader()))
    assert "paired" not in batch and dm.bank.columns == ("source",)


def test_explicit_generator_must_be_the_refiners_draft(tmp_path):
    model = WarmStartFlowMatching(_net(), GaussianDraft((1, 8, 8)), t0=0.5)
    other = GaussianDraft((1, 8, 8), n_components=3)
    dm = WarmStartDataModule(
        ImageDataModule("digits", batch_size=16), bank_size=20, bank_dir=tmp_path, generator=other
    )
    with pytest.raises(ValueError, match="differs from the refiner's draft"):
        quick_trainer(tmp_path, steps=1).fit(model, dm)
    # The same draft given explicitly is accepted.
    same = WarmStartDataModule(
        ImageDataModule("digits", batch_size=16),
        bank_size=20,
        bank_dir=tmp_path / "s",
        generator=model.draft,
    )
    quick_trainer(tmp_path, steps=1).fit(model, same)
    assert len(same.bank) == 20
