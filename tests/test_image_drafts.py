import pytest
import torch
from helpers import quick_trainer

from ws_fm.data import ImageDataModule, load_images
from ws_fm.drafts import DraftCheckpoint, GANDraft, GaussianDraft, VAEDraft


def _fit(model, tmp_path, steps=3):
    trainer = quick_trainer(tmp_path, steps)
    trainer.fit(model, ImageDataModule("digits", batch_size=32))
    return trainer


def test_gaussian_draft_reproduces_mean_and_top_principal_variances(tmp_path):
    draft = GaussianDraft((1, 8, 8), n_components=10)
    _fit(draft, tmp_path, steps=1)
    assert draft.is_fitted
    train = load_images("digits")[0].reshape(-1, 64).double()
    x = draft.sample(40_000, generator=torch.Generator().manual_seed(0)).reshape(-1, 64).double()
    torch.testing.assert_close(x.mean(0), train.mean(0), atol=0.03, rtol=0)
    evals = torch.linalg.eigvalsh(torch.cov(train.T)).flip(0)[:10]
    v = draft.components.double()
    sample_var = ((x - x.mean(0)) @ v.T).var(0)
    torch.testing.assert_close(sample_var, evals, rtol=0.05, atol=0)


@pytest.mark.parametrize("cls", [VAEDraft, GANDraft])
def test_trained_drafts_sample_images_in_range(cls, tmp_path):
    draft = cls((1, 8, 8))
    before = [p.clone() for p in draft.parameters()]
    _fit(draft, tmp_path, steps=3)
    assert any(not torch.equal(a, b) for a, b in zip(before, draft.parameters()))
    x = draft.sample(10)
    assert x.shape == (10, 1, 8, 8) and x.min() >= -1 and x.max() <= 1


def test_draft_with_another_shape_than_the_data_fails_before_training(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"VAEDraft\(sample_shape=\(1, 28, 28\)\) does not match the data's shape \(1, 8, 8\)",
    ):
        _fit(VAEDraft((1, 28, 28)), tmp_path)


def test_draft_checkpoint_loads_and_missing_one_fails_early(tmp_path):
    draft = VAEDraft((1, 8, 8))
    trainer = _fit(draft, tmp_path, steps=2)
    ckpt = tmp_path / "vae.ckpt"
    trainer.save_checkpoint(ckpt)
    loaded = DraftCheckpoint(str(ckpt), "ws_fm.drafts.VAEDraft")
    assert loaded.sample(3).shape == (3, 1, 8, 8)
    with pytest.raises(FileNotFoundError, match="does not exist: train the draft first"):
        DraftCheckpoint(str(tmp_path / "nope.ckpt"), "ws_fm.drafts.VAEDraft")
    with pytest.raises(ValueError, match="holds a VAEDraft, but draft_class asks for Linear"):
        DraftCheckpoint(str(ckpt), "torch.nn.Linear")
    # a checkpoint without the recorded class (older versions) takes draft_class, checked
    old = torch.load(ckpt, weights_only=False)
    del old["ws_fm_class"]
    torch.save(old, tmp_path / "old.ckpt")
    assert DraftCheckpoint(str(tmp_path / "old.ckpt"), "ws_fm.drafts.VAEDraft").sample(2).shape == (
        2,
        1,
        8,
        8,
    )
    with pytest.raises(ValueError, match="not a ws_fm.drafts.DraftModule subclass"):
        DraftCheckpoint(str(tmp_path / "old.ckpt"), "torch.nn.Linear")
    with pytest.raises(ValueError, match="does not record its class: pass draft_class"):
        DraftCheckpoint(str(tmp_path / "old.ckpt"))


@pytest.mark.parametrize("r1_gamma, covers_modes", [(10.0, True), (0.0, False)])
def test_gan_draft_r1_penalty_prevents_mode_collapse(r1_gamma, covers_modes, tmp_path):
    # Without R1 this GAN collapses on digits (per-pixel std across samples ~0.07 after 300
    # steps); with the default gamma it reaches most of the data's spread (0.46).
    torch.manual_seed(0)
    draft = GANDraft((1, 8, 8), r1_gamma=r1_gamma)
    quick_trainer(tmp_path, 300, max_epochs=-1).fit(draft, ImageDataModule("digits", 128))
    spread = draft.sample(1000, generator=torch.Generator().manual_seed(0)).std(0).mean()
    assert (spread > 0.3) == covers_modes, float(spread)


def test_gan_draft_rejects_negative_r1_gamma():
    with pytest.raises(ValueError, match="r1_gamma must be >= 0"):
        GANDraft((1, 8, 8), r1_gamma=-1.0)
