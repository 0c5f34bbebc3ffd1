r"""``FlowMatching``: the cold-start flow-matching system (rectified flow / CondOT by default;
I-CFM or OT-CFM depending on the coupling).

Training regresses ``v_theta(x_t, t)`` on the path's target velocity ``u_t``::

    L(theta) = E_{(x0, x1) ~ coupling, t ~ p(t)} loss(v_theta(x_t, t), u_t, t)

with the MSE by default (override :meth:`FlowMatching.loss`, which receives ``t``, for a time
weighting).  On the default CondOT path ``x_t = (1 - t) x0 + t x1`` and ``u_t = x1 - x0``.
Sampling integrates ``dx/dt = v_theta(x, t)`` from the path's start time to 1.

The system is thin: a backbone ``net(x, t, **cond)`` (any ``nn.Module``), a
:class:`~ws_fm.paths.ProbabilityPath`, a :class:`~ws_fm.couplings.Coupling`, a
:class:`~ws_fm.time_sampling.TimeSampler` and a solver, each injectable.  Subclasses override the
small hooks :meth:`draw_source`, :meth:`pair`, :meth:`sample_time` and :meth:`loss`.

Conditioning (class labels, say): batches that are mappings may carry ``"cond": {name: tensor}``;
it is passed to the backbone as keyword arguments, follows ``x1`` through the coupling, and
``sample(n, cond=...)`` passes it at sampling time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from .._checks import check_choice, check_positive_int
from .._copy import SharesFactoriesOnCopy
from ..checkpoints import StandaloneCheckpoint
from ..couplings import Coupling, resolve_coupling
from ..distributed import restore_rng, rng_states, seed_rank
from ..lookups import train_data_of
from ..paths import AffinePath, PathSample, ProbabilityPath
from ..solvers import FIXED_STEP_METHODS, SOLVERS, SolveResult, solve
from ..time_sampling import TimeSampler, resolve_time_sampler

__all__ = ["FlowMatching", "Cond"]

Cond = dict[str, Tensor] | None


class FlowMatching(StandaloneCheckpoint, SharesFactoriesOnCopy, L.LightningModule):
    """Cold-start flow matching from Gaussian noise.

    Args:
        net: the backbone, ``net(x, t, **cond) -> velocity`` with ``t`` of shape ``(batch,)``.
        path: the probability path (default :class:`~ws_fm.paths.AffinePath` with the CondOT
            schedule; e.g. ``AffinePath(CosineScheduler())`` for the cosine path).
        coupling: how sources are paired with data in a batch: a
            :class:`~ws_fm.couplings.Coupling` or a registered name, ``independent`` (I-CFM),
            ``minibatch_ot`` (OT-CFM) or ``nearest_neighbour``.
        time_sampler: a :class:`~ws_fm.time_sampling.TimeSampler` or a registered name,
            ``uniform`` or ``logit_normal``, drawing training times on ``[t_start, 1]``.
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
        coupling: str | Coupling = "independent",
        time_sampler: str | TimeSampler = "uniform",
        solver: str = "euler",
        sample_steps: int = 100,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        sample_shape: Sequence[int] | None = None,
        path: ProbabilityPath | None = None,
    ) -> None:
        super().__init__()
        check_choice(solver, SOLVERS, "solver")
        check_positive_int(sample_steps, "sample_steps")
        self.save_hyperparameters(
            ignore=[
                "net",
                "draft",
                "teacher",
                "features",
                "online_flow",
                "optimizer",
                "online_optimizer",
                "discriminator",
                "discriminator_optimizer",
                "lr_scheduler",
            ]
        )
        self.net = net
        self.coupling: Coupling = resolve_coupling(coupling, tokens=self.is_discrete)
        self.time_sampler: TimeSampler = resolve_time_sampler(time_sampler)
        self.solver = solver
        self.sample_steps = sample_steps
        self.rtol, self.atol = rtol, atol
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.sample_shape: tuple[int, ...] | None = tuple(sample_shape) if sample_shape else None
        self.path: ProbabilityPath = path if path is not None else self.default_path()

    #: Token systems set this: couplings must then support integer sequences.
    is_discrete: bool = False
    #: Module arguments saved (as skeletons) in checkpoints, so that a checkpoint loads alone.
    checkpoint_modules: ClassVar[tuple[str, ...]] = ("net",)

    # ------------------------------------------------------------------ hooks
    def default_path(self) -> ProbabilityPath:
        """The path used when none is given: the CondOT :class:`~ws_fm.paths.AffinePath`."""
        return AffinePath()

    def draw_source(self, n: int, like: Tensor | None = None) -> Tensor:
        """``n`` sources: the cold source (Gaussian noise) here; drafts for a warm start."""
        return self.cold_source(n, like)

    def cold_source(self, n: int, like: Tensor | None = None) -> Tensor:
        """``n`` draws of the cold path's source at ``t = 0``: Gaussian noise."""
        if like is not None:
            return torch.randn_like(like)
        return torch.randn(n, *self._require_sample_shape(), device=self.device)

    def pair(self, source: Tensor, x1: Tensor, cond: Cond = None) -> tuple[Tensor, Tensor, Cond]:
        """Re-pair a batch of sources with a batch of data through the coupling."""
        return self.coupling(source, x1, cond)

    def sample_time(self, n: int) -> Tensor:
        """Training times on ``[t_start, 1]``."""
        return self.time_sampler(n, self.path.t_start, device=self.device)

    def loss(self, pred: Tensor, target: Tensor, t: Tensor) -> Tensor:
        """Regression loss between predicted and target velocities at times ``t`` (MSE;
        override for a time weighting or another distance)."""
        return F.mse_loss(pred, target)

    # ------------------------------------------------------------------ model
    def forward(self, x: Tensor, t: Tensor, **cond: Tensor) -> Tensor:
        """The velocity ``v_theta(x, t)`` (with the conditioning, if any)."""
        return self.net(x, t, **cond)

    def path_sample(self, batch: Any) -> PathSample:
        """One training draw from ``batch``: the point on the path and its target."""
        return self.training_draw(batch)[0]

    def training_draw(self, batch: Any) -> tuple[PathSample, Cond]:
        """One training draw: data, sources, pairing, times and the point on the path; returns
        it with the batch's conditioning (re-paired with ``x1``)."""
        source, x1, cond = self.paired_batch(batch)
        t = self.sample_time(x1.shape[0])
        return self.path.sample(source, x1, t, self.path.draw_noise(x1)), cond

    def paired_batch(self, batch: Any) -> tuple[Tensor, Tensor, Cond]:
        """``(source, x1, cond)`` of a training batch, paired by the coupling (or as the sample
        bank stored them)."""
        x1, source, cond = self.unpack_batch(batch)
        if source is None:
            source = self.draw_source(x1.shape[0], like=x1)
        if self.batch_is_paired(batch):
            pass  # pairs precomputed in the sample bank by this coupling stay as they are
        elif self.coupling.pairs_in_batch or self.training:
            source, x1, cond = self.pair(source, x1, cond)
        # else: an evaluation batch for a bank-only coupling (teacher_forced): pairs as drawn
        return source, x1, cond

    def batch_is_paired(self, batch: Any) -> bool:
        """Whether ``batch`` holds pairs precomputed in the sample bank (``"paired": True``);
        only a coupling whose pairs live in the bank may receive them."""
        paired = isinstance(batch, Mapping) and bool(batch.get("paired", False))
        if paired and not self.coupling.pairs_in_bank:
            raise ValueError(
                f"the batch holds precomputed pairs but the coupling {self.coupling!r} pairs in "
                "the batch: build the sample bank for this coupling (WarmStartDataModule asks the "
                "model's coupling what to store) instead of passing pairs by hand."
            )
        return paired

    def unpack_batch(self, batch: Any) -> tuple[Tensor, Tensor | None, Cond]:
        """``(x1, source-or-None, cond-or-None)`` from a tensor, a ``(x1, ...)`` sequence (the
        rest is ignored), or a mapping with key ``x1`` and optionally ``source`` (drafts from the
        sample bank; ``draft`` is accepted too) and ``cond``."""
        if isinstance(batch, Mapping):
            source = batch.get("source", batch.get("draft"))
            return batch["x1"], source, batch.get("cond")
        if isinstance(batch, (list, tuple)):
            return batch[0], None, None
        return batch, None, None

    def flow_matching_loss(self, batch: Any) -> Tensor:
        """``loss(v_theta(x_t, t), u_t, t)`` on one training draw from ``batch``."""
        ps, cond = self.training_draw(batch)
        pred = self(ps.x_t, ps.t, **(cond or {}), **self.path_inputs(ps))
        return self.loss(pred, ps.u_t, ps.t)

    def path_inputs(self, ps: PathSample) -> dict[str, Tensor]:
        """What the backbone receives from a path sample besides ``x_t`` and ``t`` (none here;
        token refiners pass the committed positions to a backbone that takes them)."""
        return {}

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
        x1, _, _ = self.unpack_batch(batch)
        return self.sample(x1.shape[0]).samples

    # ------------------------------------------------------------------ sampling
    def velocity(self, cond: Cond = None) -> Any:
        """The field ``(x, t) -> v_theta(x, t, **cond)`` that the solvers integrate."""
        if not cond:
            return self
        return lambda x, t: self(x, t, **cond)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        solver: str | None = None,
        steps: int | None = None,
        step_size: float | None = None,
        source: Tensor | None = None,
        return_trajectory: bool = False,
        cond: Cond = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> SolveResult:
        """Draw ``n`` samples; returns them with the NFE counted on the backbone's calls.

        Args:
            n: number of samples.
            solver: defaults to the system's ``solver``.
            steps, step_size: fixed-step budget over ``[t_start, 1]`` (give at most one; neither
                means ``sample_steps`` steps).  Ignored by adaptive solvers.
            source: pre-drawn sources (noise, or drafts for a warm start), e.g. to time the
                draft separately.
            return_trajectory: also return the intermediate states.
            cond: conditioning passed to the backbone (``n`` rows each).
            generator: random generator of the path's noise (and of a stochastic sampler).
            seed: makes the call reproducible: every random draw (sources, drafts, noise) comes
                from ``seed``, and the global random state is left as it was.
        """
        self.check_solver(solver)  # before any draft is drawn
        if seed is not None:
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                return self.sample(
                    n, solver, steps, step_size, source, return_trajectory, cond, generator
                )
        source = self.sampling_source(n, source)
        x_start = self.path.start(source, self.path.draw_noise(source, generator))
        return self.integrate(
            x_start, self.path.t_start, solver, steps, step_size, return_trajectory, cond, generator
        )

    def check_solver(self, solver: str | None) -> str:
        """The solver to use (``solver`` or the default), checked."""
        return check_choice(solver or self.solver, SOLVERS, "solver")

    @torch.no_grad()
    def integrate(
        self,
        x_start: Tensor,
        t_start: float,
        solver: str | None = None,
        steps: int | None = None,
        step_size: float | None = None,
        return_trajectory: bool = False,
        cond: Cond = None,
        generator: torch.Generator | None = None,
    ) -> SolveResult:
        """Integrate the network's field from ``x_start`` at ``t_start`` to 1 (any start time:
        ``t_start = 0`` with :meth:`cold_source` runs this network as a cold flow).  The ODE
        solvers are deterministic: ``generator`` is for stochastic samplers of subclasses."""
        solver = self.check_solver(solver)
        if solver in FIXED_STEP_METHODS and steps is None and step_size is None:
            steps = self.sample_steps
        if solver not in FIXED_STEP_METHODS:
            steps = step_size = None
        return solve(
            self.velocity(cond),
            x_start,
            t_start=t_start,
            method=solver,
            steps=steps,
            step_size=step_size,
            rtol=self.rtol,
            atol=self.atol,
            return_trajectory=return_trajectory,
            network=self.net,
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
        seed_rank(self._trainer)  # each DDP rank draws its own noise, times and samples
        train = self.train_data()
        if train is not None:
            data_shape = tuple(train.shape[1:])
            if self.sample_shape is not None and self.sample_shape != data_shape:
                raise ValueError(
                    f"sample_shape={self.sample_shape} differs from the data's shape {data_shape}."
                )
            self.sample_shape = data_shape
            self.coupling.prepare(train)
        elif getattr(self.coupling, "pairs_in_bank", False) and stage == "fit":
            raise ValueError(
                f"coupling={self.coupling.name!r} needs the training data: use a DataModule "
                "with a train_data() method (e.g. ToyDataModule, WarmStartDataModule)."
            )

    def train_data(self) -> Tensor | None:
        """The training split of the Trainer's DataModule (None without one)."""
        return train_data_of(self._trainer)

    def _require_sample_shape(self) -> tuple[int, ...]:
        if self.sample_shape is None:
            raise RuntimeError(
                "sample_shape is unknown: pass sample_shape=... or fit/setup with a DataModule."
            )
        return self.sample_shape

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["sample_shape"] = self.sample_shape
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        shape = checkpoint.get("sample_shape")
        self.sample_shape = tuple(shape) if shape is not None else self.sample_shape
        # restored when a resumed fit starts, not on a mere load_from_checkpoint
        self._resume_rng_states = checkpoint.get("rng_states")

    def on_train_epoch_start(self) -> None:
        # At the first epoch start of a resumed fit, just before the epoch's data order is
        # drawn, as it was drawn at that point of the uninterrupted run.
        restore_rng(self._trainer, getattr(self, "_resume_rng_states", None))
        self._resume_rng_states = None

    def configure_optimizers(self) -> Any:
        # Only the backbone trains: drafts and other attached modules stay fixed.
        optimizer = self.optimizer_factory(self.net.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.lr_scheduler_factory(optimizer)}
