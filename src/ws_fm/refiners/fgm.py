r"""``FlowGeneratorMatching`` (FGM; Huang, Geng, Luo & Qi 2024): a one-step generator distilled
from a teacher flow by matching flows, not endpoints (``../shared/PEERS.md`` §1).

Three networks: the frozen teacher ``u*``, the one-step generator ``G_theta(z) = z + g_theta(z, 0)``
(:class:`~ws_fm.refiners.teacher_pairs.OneStepGeneratorMixin`, initialised from the teacher: it
starts as the teacher's 1-step Euler map) and an online flow ``v_psi`` that tracks the flow of the
generator's own samples.  With ``x1 = G(z)``, **fresh** interpolation noise ``eps ~ N(0, I)``
independent of ``z``, ``t ~ p(t)``, ``x_t = (1 - t) eps + t x1`` and ``u_c = x1 - eps``:

- online-flow step (``online_steps`` = K of them per generator step; ``x1`` detached)::

      L_psi = || v_psi(x_t, t) - u_c ||^2

- generator step (teacher and ``v_psi`` frozen, their inputs differentiable)::

      L1 = ||u* - v_psi||^2,   L2 = 2 <u* - v_psi, v_psi - u_c>
      L_theta = L2 (drop_l1=True, the paper's practice)  or  L1 + L2 (drop_l1=False)

  (:func:`ws_fm.losses.fgm_generator_loss`).  At the fixed point the generator's marginal flow is
  the teacher's, i.e. its samples follow the teacher's distribution.  Reusing ``z`` as the
  interpolation noise (``reuse_input_noise=True``, the bug of a public reimplementation, kept
  for measuring it) replaces that marginal flow by the straight flow of the coupling
  ``(z, G(z))``, whose fixed point is another distribution.

Training alternates the two steps batch by batch (manual optimisation, as Lightning's GAN
example): of every ``K + 1`` batches, ``K`` update ``psi`` and one updates ``theta``, so that
``trainer.global_step`` counts batches (one optimizer step each).  Adam with ``beta1 = 0`` for
both networks, gradient-norm clipping, and EMA of the weights through Lightning's
``EMAWeightAveraging`` callback (it averages the module; sampling uses only the generator's).
FGM needs no data: the DataModule's batches set only the batch size (and its validation split
gives the validation losses).  Sampling is ``sample(n)``: one Euler step from noise, 1 NFE.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn

from .._checks import check_choice, check_positive_int
from ..distributed import find_unused_parameters
from ..losses import fgm_generator_loss
from ..paths import PathSample
from ..teachers import resolve_teacher
from .flow_matching import FlowMatching
from .teacher_pairs import OneStepGeneratorMixin, TeacherMixin, teacher_sample_shape

__all__ = ["FlowGeneratorMatching"]

ONLINE_INITS = ("teacher", "random")


def adam_beta1_zero(params: Any) -> torch.optim.Optimizer:
    """Adam with ``betas = (0, 0.999)``, ``lr = 1e-4``: FGM's optimiser (beta1 != 0 is not
    recommended, PEERS.md §1)."""
    return torch.optim.Adam(params, lr=1e-4, betas=(0.0, 0.999))


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of ``module`` receive no gradient inside the block (inputs stay
    differentiable); their ``requires_grad`` flags are restored after it."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


class FlowGeneratorMatching(OneStepGeneratorMixin, TeacherMixin, FlowMatching):
    """A one-step generator trained by flow generator matching against a frozen teacher.

    Args:
        net: the generator's backbone ``g_theta`` (the teacher's architecture when
            ``init_from_teacher``).
        teacher: a trained cold flow (or its checkpoint's path), frozen.
        online_flow: the online flow's backbone ``v_psi``; default a copy of the teacher's.
        online_init: ``teacher`` (start ``v_psi`` from the teacher's weights) or ``random``.
        drop_l1: use ``L2`` alone (the paper's practice) rather than ``L1 + L2``.
        online_steps: ``K``, online-flow steps per generator step.
        grad_clip: gradient-norm clipping of both networks (``0`` disables it).
        reuse_input_noise: interpolate with the generator's input ``z`` instead of fresh noise
            (wrong: for measuring the bug only).
        init_from_teacher: start the generator from the teacher's weights.
        optimizer: optimizer factory for the generator (default Adam, lr 1e-4, betas (0, 0.999)).
        online_optimizer: optimizer factory for the online flow (default: ``optimizer``).
        sample_steps: Euler steps of ``sample`` from noise (1: the one-step generator ``G``).
        **kwargs: the remaining :class:`FlowMatching` arguments (time sampler, path, ...).
    """

    checkpoint_modules: ClassVar[tuple[str, ...]] = ("net", "teacher", "online_flow")

    def __init__(
        self,
        net: nn.Module,
        teacher: nn.Module | str,
        online_flow: nn.Module | None = None,
        online_init: str = "teacher",
        drop_l1: bool = True,
        online_steps: int = 5,
        grad_clip: float = 1.0,
        reuse_input_noise: bool = False,
        init_from_teacher: bool = True,
        optimizer: OptimizerCallable = adam_beta1_zero,
        online_optimizer: OptimizerCallable | None = None,
        sample_steps: int = 1,
        **kwargs: Any,
    ) -> None:
        check_choice(online_init, ONLINE_INITS, "online_init")
        check_positive_int(online_steps, "online_steps")
        if grad_clip < 0:
            raise ValueError(f"grad_clip={grad_clip} must be >= 0 (0 disables clipping).")
        if kwargs.get("lr_scheduler") is not None:
            raise ValueError("FlowGeneratorMatching takes no lr_scheduler (manual optimisation).")
        teacher_module = resolve_teacher(teacher)
        kwargs["sample_shape"] = teacher_sample_shape(kwargs.get("sample_shape"), teacher_module)
        super().__init__(net, optimizer=optimizer, sample_steps=sample_steps, **kwargs)
        self.automatic_optimization = False
        self.teacher = teacher_module
        who = type(self).__name__
        if init_from_teacher:
            self.init_from_teacher_weights(self.net, f"{who}(init_from_teacher=True)")
        if online_flow is None:
            online_flow = copy.deepcopy(teacher_module.net).requires_grad_(True)
        if online_init == "teacher":
            self.init_from_teacher_weights(
                online_flow, f"{who}(online_init='teacher')", "online_flow"
            )
        else:
            for m in online_flow.modules():
                if m is not online_flow and hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        self.online_flow = online_flow
        self.drop_l1, self.online_steps = bool(drop_l1), int(online_steps)
        self.grad_clip, self.reuse_input_noise = float(grad_clip), bool(reuse_input_noise)
        self.online_optimizer_factory = online_optimizer or optimizer

    # ------------------------------------------------------------------ the two losses
    def interpolate(self, x1: Tensor, z: Tensor) -> PathSample:
        """``x_t = (1 - t) eps + t x1`` and ``u_c = x1 - eps`` with fresh noise ``eps`` (or
        ``z`` itself with ``reuse_input_noise``)."""
        eps = z if self.reuse_input_noise else torch.randn_like(x1)
        t = self.sample_time(x1.shape[0])
        return self.path.sample(eps, x1, t, self.path.draw_noise(x1))

    def online_flow_loss(self, n: int) -> Tensor:
        """``||v_psi(x_t, t) - u_c||^2`` on ``n`` generator samples (detached)."""
        z = self.cold_source(n)
        with torch.no_grad():
            x1 = self.generate(z)
        ps = self.interpolate(x1, z)
        return F.mse_loss(self.online_flow(ps.x_t, ps.t), ps.u_t)

    def generator_loss(self, n: int) -> Tensor:
        """FGM's generator loss on ``n`` fresh samples; only the generator's parameters enter
        the graph (teacher and online flow frozen, their inputs differentiable)."""
        z = self.cold_source(n)
        x1 = self.generate(z)
        ps = self.interpolate(x1, z)
        with frozen(self.online_flow):
            u_teacher = self.teacher(ps.x_t, ps.t)
            v_online = self.online_flow(ps.x_t, ps.t)
        return fgm_generator_loss(u_teacher, v_online, ps.u_t, self.drop_l1)

    def is_generator_step(self, step: int) -> bool:
        """Whether global step ``step`` updates the generator (the last of every ``K + 1``)."""
        return step % (self.online_steps + 1) == self.online_steps

    # ------------------------------------------------------------------ Lightning
    def setup(self, stage: str) -> None:
        super().setup(stage)
        find_unused_parameters(self._trainer)  # each batch updates one of the two networks

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        opt_g, opt_v = self.optimizers()  # type: ignore[misc]
        n = self.unpack_batch(batch)[0].shape[0]
        if self.is_generator_step(self.global_step):
            opt, loss, name = opt_g, self.generator_loss(n), "train/generator_loss"
        else:
            opt, loss, name = opt_v, self.online_flow_loss(n), "train/online_loss"
        opt.zero_grad()
        self.manual_backward(loss)
        if self.grad_clip > 0:
            self.clip_gradients(
                opt, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm"
            )
        opt.step()
        self.log(name, loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        n = self.unpack_batch(batch)[0].shape[0]
        loss = self.online_flow_loss(n)
        self.log("val/online_loss", loss, sync_dist=True)
        self.log("val/generator_loss", self.generator_loss(n), sync_dist=True)
        return loss

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        n = self.unpack_batch(batch)[0].shape[0]
        loss = self.online_flow_loss(n)
        self.log("test/online_loss", loss, sync_dist=True)
        return loss

    def configure_optimizers(self) -> Any:
        return [
            self.optimizer_factory(self.net.parameters()),
            self.online_optimizer_factory(self.online_flow.parameters()),
        ]
