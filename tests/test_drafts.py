import pytest
import torch

from ws_fm.data import make_toy
from ws_fm.drafts import DraftGenerator, GaussianMixtureDraft


def test_gmm_fits_and_samples_the_right_shape_and_moments():
    data = make_toy("8gaussians", 8000, seed=0)
    draft = GaussianMixtureDraft(dim=2, n_components=8, seed=0)
    assert isinstance(draft, DraftGenerator) and not draft.is_fitted
    draft.fit(data)
    assert draft.is_fitted
    x = draft.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (20_000, 2) and x.dtype == torch.float32
    torch.testing.assert_close(x.mean(0), data.mean(0), atol=0.12, rtol=0)
    torch.testing.assert_close(x.std(0), data.std(0), atol=0.12, rtol=0.05)


def test_gmm_state_dict_round_trip_restores_the_same_sampler():
    draft = GaussianMixtureDraft(dim=2, n_components=3).fit(make_toy("moons", 2000))
    other = GaussianMixtureDraft(dim=2, n_components=3)
    other.load_state_dict(draft.state_dict())
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(draft.sample(100, g1), other.sample(100, g2))


def test_gmm_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        GaussianMixtureDraft().sample(3)
    with pytest.raises(ValueError, match="dim=3.*2 values per sample"):
        GaussianMixtureDraft(dim=3).fit(torch.randn(100, 2))
    with pytest.raises(ValueError, match="n_components=0"):
        GaussianMixtureDraft(n_components=0)
