r"""``FlowMatching``: the cold-start flow-matching system (rectified flow / CondOT; I-CFM or
OT-CFM depending on the coupling).

Training regresses ``v_theta(x_t, t)`` on the path's target velocity ``u_t`` with MSE::

    L(theta) = E_{(x0, x1) ~ coupling, t ~ p(t)} || v_theta(x_t, t) - u_t ||^2

Sampling integrates ``dx/dt = v_theta(x, t)`` from the path's start time to 1.

The system is thin: a backbone ``net(x, t)`` (any ``nn.Module``), a :class:`~ws_fm.paths.ProbabilityPath`,
a :class:`~ws_fm.couplings.Coupling`, a time sampler and a solver.  Subclasses override the
small hooks :meth:`draw_source`, :meth:`pair`, :meth:`sample_time`, :meth:`loss` and
:meth:`make_path`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from .._checks import check_choice, check_positive_int
from .._copy import SharesFactoriesOnCopy
from ..couplings import COUPLINGS, Coupling, NearestNeighbourCoupling, get_coupling
from ..data.tensor_datamodule import datamodule_train_data
from ..paths import ColdStartPath, PathSample, ProbabilityPath
from ..solvers import FIXED_STEP_METHODS, SOLVERS, SolveResult, solve
from ..time_sampling import TIME_SAMPLERS, sample_time

__all__ = ["FlowMatching"]


class FlowMatching(SharesFactoriesOnCopy, L.LightningModule):
    """Cold-start flow matching from Gaussian noise.

    Args:
        net: the backbone, ``net(x, t) -> velocity`` with ``t`` of shape ``(batch,)``.
        coupling: how sources are paired with data in a batch: ``independent`` (I-CFM),
            ``minibatch_ot`` (OT-CFM) or ``nearest_neighbour``.
        time_sampler: ``uniform`` or ``logit_normal`` on ``[t_start, 1]``.
        solver: default sampling solver (see :mod:`ws_fm.solvers`).
        sample_steps: default number of fixed steps for sampling.
        rtol, atol: tolerances of the adaptive solver.
        optimizer: optimizer factory over the backbone's parameters (from YAML:
            ``class_path: torch.optim.AdamW`` with ``init_args``).
        lr_scheduler: optional LR-scheduler factory.
        sample_shape: per-sample data shape; inferred from the DataModule in ``setup`` when None.
    """

    def __init__(
        self,
        net: nn.Module,
        coupling: str = "independent",
        time_sampler: str = "uniform",
        solver: str = "euler",
        sample_steps: int = 100,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        sample_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_choice(coupling, COUPLINGS, "coupling")
        check_choice(time_sampler, TIME_SAMPLERS, "time_sampler")
        check_choice(solver, SOLVERS, "solver")
        check_positive_int(sample_steps, "sample_steps")
        self.save_hyperparameters(ignore=["net", "draft", "optimizer", "lr_scheduler"])
        self.net = net
        self.coupling: Coupling = get_coupling(coupling)
        self.time_sampler = time_sampler
        self.solver = solver
        self.sample_steps = sample_steps
        self.rtol, self.atol = rtol, atol
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.sample_shape: tuple[int, ...] | None = tuple(sample_shape) if sample_shape else None
        self.path: ProbabilityPath = self.make_path()

    # ------------------------------------------------------------------ hooks
    def make_path(self) -> ProbabilityPath:
        """The probability path this system trains on."""
        return ColdStartPath()

    def draw_source(self, n: int, like: Tensor | None = None) -> Tensor:
        """``n`` sources: Gaussian noise for the cold start."""
        if like is not None:
            return torch.randn_like(like)
        return torch.randn(n, *self._require_sample_shape(), device=self.device)

    def pair(self, source: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
        """Re-pair a batch of sources with a batch of data through the coupling."""
        return self.coupling(source, x1)

    def sample_time(self, n: int) -> Tensor:
        """Training times on ``[t_start, 1]``."""
        return sample_time(self.time_sampler, n, self.path.t_start, device=self.device)

    def loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """Regression loss between predicted and target velocities (MSE)."""
        return F.mse_loss(pred, target)

    # ------------------------------------------------------------------ model
    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """The velocity ``v_theta(x, t)``."""
        return self.net(x, t)

    def path_sample(self, batch: Any) -> PathSample:
        """One training draw: data, sources, pairing, times and the point on the path."""
        x1, source = self.unpack_batch(batch)
        if source is None:
            source = self.draw_source(x1.shape[0], like=x1)
        if not (isinstance(batch, Mapping) and batch.get("paired", False)):
            source, x1 = self.pair(
                source, x1
            )  # pairs precomputed by the DataModule stay as they are
        t = self.sample_time(x1.shape[0])
        return self.path.sample(source, x1, t, self.path.draw_noise(x1))

    def unpack_batch(self, batch: Any) -> tuple[Tensor, Tensor | None]:
        """``(x1, source-or-None)`` from a tensor, a ``(x1, ...)`` sequence, or a mapping with
        keys ``x1`` and optionally ``draft`` (the draft bank's batches; ``"paired": True`` marks
        pairs that the coupling must not re-pair)."""
        if isinstance(batch, Mapping):
            return batch["x1"], batch.get("draft")
        if isinstance(batch, (list, tuple)):
            return batch[0], None
        return batch, None

    def flow_matching_loss(self, batch: Any) -> Tensor:
        """``loss(v_theta(x_t, t), u_t)`` on one training draw from ``batch``."""
        ps = self.path_sample(batch)
        return self.loss(self(ps.x_t, ps.t), ps.u_t)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = self.flow_matching_loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = self.flow_matching_loss(batch)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = self.flow_matching_loss(batch)
        self.log("test/loss", loss, sync_dist=True)
        return loss

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Samples as many as the batch holds, with the default solver settings."""
        x1, _ = self.unpack_batch(batch)
        return self.sample(x1.shape[0]).samples

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        n: int,
        solver: str | None = None,
        steps: int | None = None,
        step_size: float | None = None,
        source: Tensor | None = None,
        return_trajectory: bool = False,
    ) -> SolveResult:
        """Draw ``n`` samples; returns them with the counted NFE.

        Args:
            n: number of samples.
            solver: defaults to the system's ``solver``.
            steps, step_size: fixed-step budget over ``[t_start, 1]`` (give at most one; neither
                means ``sample_steps`` steps).  Ignored by adaptive solvers.
            source: pre-drawn sources (noise, or drafts for a warm start), e.g. to time the
                draft separately.
            return_trajectory: also return the intermediate states.
        """
        solver = check_choice(solver or self.solver, SOLVERS, "solver")
        if solver in FIXED_STEP_METHODS and steps is None and step_size is None:
            steps = self.sample_steps
        if solver not in FIXED_STEP_METHODS:
            steps = step_size = None
        source = self.sampling_source(n, source)
        x_start = self.path.start(source, self.path.draw_noise(source))
        return solve(
            self,
            x_start,
            t_start=self.path.t_start,
            method=solver,
            steps=steps,
            step_size=step_size,
            rtol=self.rtol,
            atol=self.atol,
            return_trajectory=return_trajectory,
        )

    def sampling_source(self, n: int, source: Tensor | None = None) -> Tensor:
        """``n`` fresh sources, or the given pre-drawn ones (checked), on the module's device."""
        if source is None:
            source = self.draw_source(n)
        elif source.shape[0] != n:
            raise ValueError(f"source has {source.shape[0]} samples but n={n}.")
        return source.to(self.device)

    # ------------------------------------------------------------------ Lightning
    def setup(self, stage: str) -> None:
        train = self._datamodule_train_data()
        if train is not None:
            data_shape = tuple(train.shape[1:])
            if self.sample_shape is not None and self.sample_shape != data_shape:
                raise ValueError(
                    f"sample_shape={self.sample_shape} differs from the data's shape {data_shape}."
                )
            self.sample_shape = data_shape
        if isinstance(self.coupling, NearestNeighbourCoupling):
            # Needed for batches without precomputed pairs (validation, or a plain DataModule).
            if train is None:
                raise ValueError(
                    "coupling='nearest_neighbour' needs the training data: use a DataModule "
                    "with a train_data() method (e.g. ToyDataModule, WarmStartDataModule)."
                )
            self.coupling.set_reference(train)

    def _datamodule_train_data(self) -> Tensor | None:
        return datamodule_train_data(self._trainer)

    def _require_sample_shape(self) -> tuple[int, ...]:
        if self.sample_shape is None:
            raise RuntimeError(
                "sample_shape is unknown: pass sample_shape=... or fit/setup with a DataModule."
            )
        return self.sample_shape

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["sample_shape"] = self.sample_shape

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        shape = checkpoint.get("sample_shape")
        self.sample_shape = tuple(shape) if shape is not None else self.sample_shape

    def configure_optimizers(self) -> Any:
        # Only the backbone trains: drafts and other attached modules stay fixed.
        optimizer = self.optimizer_factory(self.net.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.lr_scheduler_factory(optimizer)}
