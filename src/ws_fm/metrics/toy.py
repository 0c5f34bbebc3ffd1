r"""Two-sample distance for the toy sets: the sliced Wasserstein-2 distance (POT).

:math:`SW_2(\mu, \nu) = \big(\mathbb E_{\theta \sim U(S^{d-1})} W_2^2(\theta_\# \mu,
\theta_\# \nu)\big)^{1/2}`, estimated with ``n_projections`` random directions (fixed seed, so
two calls on the same samples agree).
"""

from __future__ import annotations

import ot
from torch import Tensor

__all__ = ["sliced_wasserstein"]


def sliced_wasserstein(x: Tensor, y: Tensor, n_projections: int = 500, seed: int = 0) -> float:
    """Sliced Wasserstein-2 distance between the point sets ``x`` and ``y`` (lower is closer)."""
    a = x.reshape(x.shape[0], -1).double().cpu().numpy()
    b = y.reshape(y.shape[0], -1).double().cpu().numpy()
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"sample dimension {a.shape[1]} differs from reference {b.shape[1]}.")
    return float(ot.sliced_wasserstein_distance(a, b, n_projections=n_projections, seed=seed))
