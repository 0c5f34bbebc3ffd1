r"""A Gaussian-mixture draft: deliberately rough, fitted in closed form (EM) by scikit-learn.

:math:`q(x) = \sum_k w_k \, \mathcal N(x; \mu_k, \Sigma_k)`, sampled in torch as
:math:`x = \mu_k + L_k z` with :math:`L_k L_k^\top = \Sigma_k`.  The parameters are buffers, so
the fitted draft is saved in (and restored from) the refiner's checkpoint.  They have fixed
shapes from construction (``n_components``, ``dim``) because Lightning callbacks such as
``EMAWeightAveraging`` copy the module before ``setup`` fits the draft.
"""

from __future__ import annotations

import torch
from sklearn.mixture import GaussianMixture
from torch import Tensor, nn

from .._checks import check_positive_int

__all__ = ["GaussianMixtureDraft"]


class GaussianMixtureDraft(nn.Module):
    """Gaussian mixture with full covariances over flattened samples.

    Args:
        dim: data dimension (samples are vectors of this size).
        n_components: number of mixture components (few: the draft is meant to be rough).
        seed: seed of scikit-learn's EM initialisation.
        max_fit_samples: EM sees at most this many training points (a random subset).
    """

    def __init__(
        self, dim: int = 2, n_components: int = 4, seed: int = 0, max_fit_samples: int = 20_000
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.n_components = check_positive_int(n_components, "n_components")
        self.seed = seed
        self.max_fit_samples = check_positive_int(max_fit_samples, "max_fit_samples")
        k = self.n_components
        # All-zero weights mark an unfitted mixture.
        self.register_buffer("weights", torch.zeros(k))
        self.register_buffer("means", torch.zeros(k, dim))
        self.register_buffer("scale_tril", torch.eye(dim).repeat(k, 1, 1))

    @property
    def is_fitted(self) -> bool:
        return bool(self.weights.sum() > 0)

    @torch.no_grad()
    def fit(self, data: Tensor) -> GaussianMixtureDraft:
        """Fit by EM on ``data`` of shape ``(N, *sample_shape)``."""
        if data.shape[0] < self.n_components:
            raise ValueError(
                f"GaussianMixtureDraft(n_components={self.n_components}) needs at least that "
                f"many data points, got {data.shape[0]}."
            )
        if data[0].numel() != self.dim:
            raise ValueError(
                f"GaussianMixtureDraft(dim={self.dim}) got data with {data[0].numel()} values per "
                f"sample (shape {tuple(data.shape[1:])}); set dim to match the data."
            )
        g = torch.Generator().manual_seed(self.seed)
        if data.shape[0] > self.max_fit_samples:
            data = data[torch.randperm(data.shape[0], generator=g)[: self.max_fit_samples]]
        flat = data.reshape(data.shape[0], -1).double().cpu().numpy()
        gm = GaussianMixture(
            self.n_components, covariance_type="full", random_state=self.seed, reg_covar=1e-5
        ).fit(flat)
        self.weights.copy_(torch.as_tensor(gm.weights_))
        self.means.copy_(torch.as_tensor(gm.means_))
        self.scale_tril.copy_(torch.linalg.cholesky(torch.as_tensor(gm.covariances_)))
        return self

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        if not self.is_fitted:
            raise RuntimeError(
                "GaussianMixtureDraft is not fitted: call fit(train_data) first "
                "(WarmStartFlowMatching does this in setup)."
            )
        dev = self.means.device
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.means.shape[1], 1, device=dev, generator=generator)
        x = self.means[k] + (self.scale_tril[k] @ z).squeeze(-1)
        return x

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_components={self.n_components}, fitted={self.is_fitted}"
