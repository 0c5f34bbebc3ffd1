r"""``WarmStartFlowMatching``: the refiner that starts its ODE from drafts at ``t0``.

Path (DESIGN.md §1)::

    x_t0 = t0 * xd + sigma * (1 - t0) * eps,    s = (t - t0) / (1 - t0)
    x_t  = (1 - s) * x_t0 + s * x1,             u_t = (x1 - x_t0) / (1 - t0),   t in [t0, 1]

Training pairs drafts ``xd`` with data ``x1`` through the coupling (``minibatch_ot`` by default:
with independent pairs the marginal velocity of crossing pairs drags points to the mean) and draws
``t`` on ``[t0, 1]``.  Sampling draws drafts, forms ``x_t0`` and integrates from ``t0`` to 1, so a
fixed step size costs ``ceil((1 - t0) / h)`` steps instead of ``ceil(1 / h)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..drafts.base import DraftGenerator
from ..paths import ProbabilityPath, WarmStartPath
from .flow_matching import FlowMatching

__all__ = ["WarmStartFlowMatching"]


class WarmStartFlowMatching(FlowMatching):
    """Warm-start flow matching: refine drafts from ``t0`` to 1.

    Args:
        net: the backbone, ``net(x, t) -> velocity``.
        draft: the draft generator (``sample(n) -> Tensor``); a closed-form draft that offers
            ``fit`` is fitted on the DataModule's training data in ``setup``.  It is frozen: only
            ``net`` trains.  Batches that carry drafts (``{"x1": ..., "draft": ...}``) are used
            instead of calling it during training.
        t0: start time in ``[0, 1)``; ``t0 = 0`` is exactly the cold start.
        sigma: noise scale at ``t0`` (``>= 0``).
        coupling: ``minibatch_ot`` (default), ``independent`` (the ablation) or
            ``nearest_neighbour``.
        **kwargs: the remaining :class:`FlowMatching` arguments.
    """

    def __init__(
        self,
        net: nn.Module,
        draft: nn.Module,
        t0: float = 0.8,
        sigma: float = 1.0,
        coupling: str = "minibatch_ot",
        **kwargs: Any,
    ) -> None:
        if not isinstance(draft, DraftGenerator):
            raise ValueError(
                f"draft={type(draft).__name__} has no sample(n) method; pass a draft generator "
                "such as ws_fm.drafts.GaussianMixtureDraft."
            )
        # The path is built in FlowMatching.__init__ through make_path, which reads these.
        self._path_args = WarmStartPath(t0, sigma)
        super().__init__(net, coupling=coupling, **kwargs)
        self.t0, self.sigma = self._path_args.t0, self._path_args.sigma
        self.draft = draft.requires_grad_(False).eval()

    def make_path(self) -> ProbabilityPath:
        return self._path_args

    def draw_source(self, n: int, like: Tensor | None = None) -> Tensor:
        """``n`` drafts from the draft generator."""
        self.ensure_draft_fitted()
        xd = self.draft.sample(n)
        return xd.to(like.device if like is not None else self.device)

    def train(self, mode: bool = True) -> WarmStartFlowMatching:
        # The draft is a fixed generator: keep it in eval mode (dropout, batch norm) always.
        super().train(mode)
        self.draft.eval()
        return self

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self._draft_fit_data = self._datamodule_train_data()
        self.ensure_draft_fitted()
        self.check_draft_shape()

    def ensure_draft_fitted(self) -> None:
        """Fit a closed-form draft (one with ``fit`` and ``is_fitted``) on the training data.

        Called in ``setup`` and again before drafts are drawn: callbacks that copy the module
        before ``setup`` (``EMAWeightAveraging`` swaps its copy in for validation) carry an
        unfitted draft, which is fitted here on first use.  The fit is deterministic (seeded), so
        every copy, and every DDP rank, holds the same draft.
        """
        data = getattr(self, "_draft_fit_data", None)
        if data is None or not hasattr(self.draft, "fit") or getattr(self.draft, "is_fitted", True):
            return
        with torch.inference_mode(False):
            self.draft.fit(data)

    @torch.no_grad()
    def check_draft_shape(self) -> None:
        """Raise a ``ValueError`` before training when drafts and data differ in shape."""
        if self.sample_shape is None:
            return
        if hasattr(self.draft, "is_fitted") and not self.draft.is_fitted:
            return
        got = tuple(self.draft.sample(2).shape[1:])
        if got != tuple(self.sample_shape):
            raise ValueError(
                f"draft samples have shape {got} but the data has shape {tuple(self.sample_shape)}: "
                "the draft must be trained on the same data (and resolution) as the refiner."
            )
