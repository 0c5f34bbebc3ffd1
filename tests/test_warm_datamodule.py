import pytest
import torch
from helpers import quick_trainer

from ws_fm.data import DraftBank, ImageDataModule, WarmStartDataModule
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
    assert batch["x1"].shape == batch["draft"].shape == (16, 1, 8, 8)
    # The banked drafts are the draft's own samples (same mean as a fresh draw).
    fresh = model.draft.sample(2000).mean()
    assert abs(float(dm.bank.drafts(range(200)).mean() - fresh)) < 0.05


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
        nearest_neighbour=True,
    )
    quick_trainer(tmp_path).fit(model, dm)
    batch = next(iter(dm.train_dataloader()))
    assert batch["paired"] is True
    train = dm.train_data().reshape(len(dm.train_data()), -1)
    nearest = train[torch.cdist(batch["draft"].reshape(16, -1), train).argmin(1)]
    torch.testing.assert_close(batch["x1"].reshape(16, -1), nearest)


def test_bank_from_another_draft_is_refused_before_training(tmp_path):
    dm_args = dict(bank_size=50, bank_dir=tmp_path, bank_name="bank", on_stale="error")
    first = WarmStartFlowMatching(_net(), GaussianDraft((1, 8, 8), n_components=5), t0=0.5)
    quick_trainer(tmp_path, steps=1).fit(
        first, WarmStartDataModule(ImageDataModule("digits", batch_size=16), **dm_args)
    )
    other = WarmStartFlowMatching(_net(), VAEDraft((1, 8, 8)), t0=0.5)
    with pytest.raises(ValueError, match="built from another draft"):
        quick_trainer(tmp_path).fit(
            other, WarmStartDataModule(ImageDataModule("digits", batch_size=16), **dm_args)
        )
    assert DraftBank(tmp_path / "bank").meta["draft_class"].endswith("GaussianDraft")


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
