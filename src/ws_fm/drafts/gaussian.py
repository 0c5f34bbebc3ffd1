r"""``GaussianDraft``: a PCA Gaussian fitted in closed form (no gradient steps).

With the data's mean :math:`\mu`, the top-``k`` eigenpairs :math:`(\lambda_j, v_j)` of its
covariance and the mean residual variance :math:`\bar\lambda` of the other directions::

    x = mu + sum_j sqrt(lambda_j) z_j v_j + sqrt(residual) * P_perp z',   z, z' ~ N(0, I)

so the draft reproduces the data's mean and top-``k`` principal variances, and nothing finer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .._checks import check_positive_int
from .module import ClosedFormDraft, DraftModule

__all__ = ["GaussianDraft"]


class GaussianDraft(ClosedFormDraft, DraftModule):
    """PCA Gaussian over flattened images; fitted in ``setup`` from the DataModule's training data.

    Args:
        sample_shape: per-sample shape, e.g. ``(1, 8, 8)``.
        n_components: principal components kept.
        residual: add isotropic noise with the residual variance in the other directions.
    """

    def __init__(
        self, sample_shape: Sequence[int] = (1, 8, 8), n_components: int = 10, residual: bool = True
    ) -> None:
        super().__init__(sample_shape)
        d = int(torch.tensor(self.sample_shape).prod())
        self.n_components = min(check_positive_int(n_components, "n_components"), d)
        self.residual = residual
        self.automatic_optimization = False
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("components", torch.zeros(self.n_components, d))
        self.register_buffer("variances", torch.zeros(self.n_components))
        self.register_buffer("residual_variance", torch.zeros(()))

    @property
    def is_fitted(self) -> bool:
        return bool(self.variances.sum() > 0)

    @torch.no_grad()
    def fit(self, data: Tensor) -> GaussianDraft:
        x = data.reshape(data.shape[0], -1).double()
        mean = x.mean(0)
        cov = torch.cov((x - mean).T)
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
        k = self.n_components
        self.mean.copy_(mean)
        self.components.copy_(evecs[:, :k].T)
        self.variances.copy_(evals[:k])
        rest = evals[k:]
        self.residual_variance.copy_(rest.mean() if rest.numel() else torch.zeros(()))
        return self

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        if not self.is_fitted:
            raise RuntimeError(
                "GaussianDraft is not fitted: call fit(train_data) or train it with a DataModule."
            )
        dev = self.mean.device
        z = torch.randn(n, self.n_components, device=dev, generator=generator)
        x = self.mean + (z * self.variances.sqrt()) @ self.components
        if self.residual and self.residual_variance > 0:
            e = torch.randn(n, self.mean.numel(), device=dev, generator=generator)
            e = e - (e @ self.components.T) @ self.components  # orthogonal to the kept directions
            x = x + self.residual_variance.sqrt() * e
        return x.reshape(n, *self.sample_shape)
