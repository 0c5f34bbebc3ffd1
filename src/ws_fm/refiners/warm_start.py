r"""``WarmStartFlowMatching``: the refiner that starts its ODE from drafts at ``t0``.

Path (docs/design.md §1; :class:`~ws_fm.paths.WarmStart` around the cold path)::

    x_t0 = t0 * xd + sigma * (1 - t0) * eps,    s = (t - t0) / (1 - t0)
    x_t  = (1 - s) * x_t0 + s * x1,             u_t = (x1 - x_t0) / (1 - t0),   t in [t0, 1]

Training pairs drafts ``xd`` with data ``x1`` through the coupling (``minibatch_ot`` by default:
with independent pairs the marginal velocity of crossing pairs drags points to the mean) and draws
``t`` on ``[t0, 1]``.  Sampling draws drafts, forms ``x_t0`` and integrates from ``t0`` to 1, so a
fixed step size costs ``ceil((1 - t0) / h)`` steps instead of ``ceil(1 / h)``.

:class:`WarmStartMixin` holds what every warm system shares (the draft, its fitting and checks,
the wrapping of the cold path); :class:`WarmStartFlowMatching` and the discrete
:class:`~ws_fm.refiners.WarmStartDiscreteFlowMatching` put it in front of their cold system.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from ..calibration import DEFAULT_T0_GRID, T0Calibration, calibrate_t0
from ..couplings import Coupling
from ..drafts.base import DraftGenerator
from ..paths import ProbabilityPath, WarmStart
from .flow_matching import FlowMatching

__all__ = ["WarmStartMixin", "WarmStartFlowMatching"]


class WarmStartMixin:
    """Draft handling for a warm system; put it before the cold system in the bases.

    The subclass's ``__init__`` calls :meth:`init_warm_start` with the draft and the warm path
    before the cold system's ``__init__`` (which stores the path).
    """

    draft: nn.Module
    checkpoint_modules: ClassVar[tuple[str, ...]] = ("net", "draft")

    @staticmethod
    def check_draft(draft: Any) -> nn.Module:
        if not isinstance(draft, DraftGenerator) or not isinstance(draft, nn.Module):
            raise ValueError(
                f"draft={type(draft).__name__} is not a draft generator: it has no sample(n) method or is "
                "not an nn.Module; pass one such as ws_fm.drafts.GaussianMixtureDraft."
            )
        return draft

    def init_warm_start(self, draft: nn.Module, t0: float | str = 0.8) -> None:
        self.draft = draft.requires_grad_(False).eval()
        self.t0_auto = t0 == "auto"
        #: the curve ``t0: auto`` was read from (set in ``setup``; saved in checkpoints)
        self.t0_calibration: T0Calibration | None = None

    @staticmethod
    def start_time(t0: float | str) -> float:
        """The start time the warm path is built with: ``t0``, or 0 until ``t0: auto`` is
        calibrated in ``setup`` (:meth:`calibrate_start`)."""
        if isinstance(t0, str):
            if t0 != "auto":
                raise ValueError(f"t0={t0!r}: give a number in [0, 1) or 'auto'.")
            return 0.0
        return t0

    def calibrate_start(self, train: Tensor) -> T0Calibration:
        """``t0: auto``: the latest ``t0`` at which the draft's warm start point matches the cold
        path's state (:func:`ws_fm.calibration.calibrate_t0`), set on the path and recorded in
        the hyperparameters (so checkpoints hold the number)."""
        cal = calibrate_t0(self.draft, train, path=self.path.path, grid=self.calibration_grid())
        self.path.t0 = cal.t0  # type: ignore[attr-defined]
        self.hparams["t0"] = cal.t0  # type: ignore[attr-defined]
        self.t0_calibration, self.t0_auto = cal, False
        rank_zero_info("t0: auto\n" + "\n".join(cal.lines()))
        return cal

    def calibration_grid(self) -> tuple[float, ...]:
        """The ``t0`` values ``t0: auto`` chooses among."""
        return DEFAULT_T0_GRID

    @property
    def t0(self) -> float:
        return self.path.t_start  # type: ignore[attr-defined]

    def draw_source(self, n: int, like: Tensor | None = None) -> Tensor:
        """``n`` drafts from the draft generator."""
        self.ensure_draft_fitted()
        xd = self.draft.sample(n)
        return xd.to(like.device if like is not None else self.device)  # type: ignore[attr-defined]

    def bank_generator(self) -> nn.Module:
        """The generator whose samples a :class:`~ws_fm.data.WarmStartDataModule` stores in its
        sample bank (the draft), handed over explicitly rather than looked up by attribute."""
        return self.draft

    def train(self, mode: bool = True) -> Any:
        # The draft is a fixed generator: keep it in eval mode (dropout, batch norm) always.
        super().train(mode)  # type: ignore[misc]
        self.draft.eval()
        return self

    def setup(self, stage: str) -> None:
        super().setup(stage)  # type: ignore[misc]
        self._draft_fit_data = self.train_data()  # type: ignore[attr-defined]
        self.ensure_draft_fitted()
        self.check_draft_shape()
        if self.t0_auto:
            if self._draft_fit_data is None:
                raise ValueError(
                    "t0='auto' needs the training data to calibrate on: fit with a DataModule "
                    "that offers train_data() (every ws_fm DataModule does)."
                )
            self.calibrate_start(self._draft_fit_data)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]
        if self.t0_calibration is not None:
            cal = self.t0_calibration
            checkpoint["t0_calibration"] = {
                "t0": cal.t0,
                "grid": list(cal.grid),
                "distance": list(cal.distance),
                "floor": list(cal.floor),
                "tolerance": cal.tolerance,
                "metric": cal.metric,
            }

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
        shape = self.sample_shape  # type: ignore[attr-defined]
        if shape is not None:
            self._check_shape(tuple(shape))

    def draft_shape(self) -> tuple[int, ...] | None:
        """The shape of one draft, from the draft's declared ``sample_shape`` where it has one,
        else from two samples of a fitted draft (None: not known before fitting)."""
        declared = getattr(self.draft, "sample_shape", None)
        if declared is not None:
            return tuple(declared)
        if hasattr(self.draft, "is_fitted") and not self.draft.is_fitted:
            return None
        with torch.no_grad():
            return tuple(self.draft.sample(2).shape[1:])

    def _check_shape(self, data_shape: tuple[int, ...]) -> None:
        got = self.draft_shape()
        if got is not None and got != data_shape:
            inner = getattr(self.draft, "draft", self.draft)
            raise ValueError(
                f"the draft ({type(inner).__name__}) makes samples of shape {got} but the data "
                f"has shape {data_shape}: the draft must be trained on the same data (and "
                "resolution) as the refiner."
            )

    def check_draft_against(self, train: Tensor, tokenizer: Any = None) -> None:
        """Refuse a draft that cannot serve this data, before any work is done on it (the
        :class:`~ws_fm.data.WarmStartDataModule` calls this before it builds a bank)."""
        self._check_shape(tuple(train.shape[1:]))


class WarmStartFlowMatching(WarmStartMixin, FlowMatching):
    """Warm-start flow matching: refine drafts from ``t0`` to 1.

    Args:
        net: the backbone, ``net(x, t, **cond) -> velocity``.
        draft: the draft generator (``sample(n) -> Tensor``); a closed-form draft that offers
            ``fit`` is fitted on the DataModule's training data in ``setup``.  It is frozen: only
            ``net`` trains.  Batches that carry drafts (``{"x1": ..., "source": ...}``, from the
            sample bank) are used instead of calling it during training.
        t0: start time in ``[0, 1)``; ``t0 = 0`` is exactly the cold start.  ``"auto"``: chosen
            in ``setup`` from the draft and the training data, before training
            (:func:`ws_fm.calibration.calibrate_t0`), and saved as a number in the
            hyperparameters.
        sigma: noise scale at ``t0`` (``>= 0``).
        coupling: a :class:`~ws_fm.couplings.Coupling` or ``minibatch_ot`` (default),
            ``independent`` (the ablation) or ``nearest_neighbour``.
        path: the cold path to warm-start (default: CondOT); it is wrapped in
            :class:`~ws_fm.paths.WarmStart` with ``t0`` and ``sigma``.
        **kwargs: the remaining :class:`FlowMatching` arguments.
    """

    def __init__(
        self,
        net: nn.Module,
        draft: nn.Module,
        t0: float | str = 0.8,
        sigma: float = 1.0,
        coupling: str | Coupling = "minibatch_ot",
        path: ProbabilityPath | None = None,
        **kwargs: Any,
    ) -> None:
        draft = self.check_draft(draft)
        start = self.start_time(t0)
        warm = WarmStart(path if path is not None else self.default_path(), start, sigma)
        super().__init__(net, coupling=coupling, path=warm, **kwargs)
        self.init_warm_start(draft, t0)

    @property
    def sigma(self) -> float:
        return self.path.sigma  # type: ignore[attr-defined]
