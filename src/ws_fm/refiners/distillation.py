r"""``OneStepDistillation``: a one-step student of a teacher flow (InstaFlow-style, PEERS.md §2-3).

The student is a flow whose single Euler step from ``t = 0`` is the generator::

    G(z) = z + v_theta(z, 0),    L = d(G(z), x1_teacher(z)) + w_feat * || f(G(z)) - f(x1) ||^2

trained to land on the teacher's endpoint ``x1 = ODE[teacher](z)`` for the same noise ``z`` (the
teacher's pairs, from the sample bank or online, as for :class:`~ws_fm.refiners.ReFlow`), and
initialised from the teacher (or from a ReFlow model, whose near-straight paths make the one-step
target easier).  ``d`` is ``l2`` (default), ``l1`` or ``pseudo_huber``; ``features`` is an optional
frozen feature network for a perceptual term (offline: the data set's classifier, or the FID
Inception network).  Sampling is ``sample(n)``: one Euler step, 1 NFE.

The optional adversarial term (``adversarial_weight > 0`` with a ``discriminator``, e.g.
:class:`~ws_fm.nets.MLPCritic` or :class:`~ws_fm.nets.ConvCritic`) adds
``w_adv * softplus(-D(G(z)))`` to the student's loss, with ``D`` trained to tell the teacher's
endpoints from the student's (non-saturating loss, optional R1 penalty; :mod:`ws_fm.losses`).
It trains by manual optimisation, as Lightning's GAN example and the GAN draft: per batch one
discriminator step then one student step, so ``trainer.global_step`` counts two per batch.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn

from .._checks import check_choice
from ..distributed import find_unused_parameters
from ..losses import DISTANCES, adversarial_generator_loss, discriminator_loss, distance
from .flow_matching import FlowMatching
from .teacher_pairs import OneStepGeneratorMixin, TeacherPairsMixin, teacher_sample_shape

__all__ = ["OneStepDistillation"]


def _adam_critic(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=2e-4, betas=(0.0, 0.99))


class OneStepDistillation(OneStepGeneratorMixin, TeacherPairsMixin, FlowMatching):
    """A one-step generator distilled from a teacher's noise-to-sample pairs.

    Args:
        net: the backbone (the teacher's architecture when ``init_from_teacher``).
        teacher: a trained cold flow (or ReFlow) or its checkpoint's path, frozen.
        teacher_solver, teacher_steps, teacher_rtol, teacher_atol, online, init_from_teacher:
            as for :class:`~ws_fm.refiners.ReFlow`.
        distance: ``l2``, ``l1`` or ``pseudo_huber`` (``sqrt(||d||^2 + c^2) - c`` per sample with
            ``c = 0.00054 * sqrt(dim)``, the consistency-model constant).
        features: optional frozen feature network for the perceptual term.
        feature_weight: weight of the perceptual term.
        discriminator: ``D(x) -> logits (B,)`` for the adversarial term.
        adversarial_weight: weight ``w_adv`` of the adversarial term (0: off).
        r1_gamma: R1 penalty of the discriminator on the teacher's endpoints.
        discriminator_optimizer: its optimizer factory (default Adam, lr 2e-4, betas (0, 0.99)).
        sample_steps: Euler steps of ``sample`` from noise (1: the one-step generator ``G``).
    """

    checkpoint_modules: ClassVar[tuple[str, ...]] = ("net", "teacher", "features", "discriminator")

    def __init__(
        self,
        net: nn.Module,
        teacher: nn.Module | str,
        teacher_solver: str = "dopri5",
        teacher_steps: int = 100,
        teacher_rtol: float = 1e-5,
        teacher_atol: float = 1e-5,
        online: bool = False,
        init_from_teacher: bool = True,
        distance: str = "l2",
        features: nn.Module | None = None,
        feature_weight: float = 0.0,
        discriminator: nn.Module | None = None,
        adversarial_weight: float = 0.0,
        r1_gamma: float = 0.0,
        discriminator_optimizer: OptimizerCallable | None = None,
        coupling: Any = None,
        sample_steps: int = 1,
        **kwargs: Any,
    ) -> None:
        if adversarial_weight < 0 or r1_gamma < 0:
            raise ValueError("adversarial_weight and r1_gamma must be >= 0.")
        if adversarial_weight > 0 and discriminator is None:
            raise ValueError(
                "adversarial_weight > 0 needs a discriminator (e.g. ws_fm.nets.MLPCritic or "
                "ws_fm.nets.ConvCritic)."
            )
        if adversarial_weight > 0 and kwargs.get("lr_scheduler") is not None:
            raise ValueError(
                "the adversarial term trains by manual optimisation: it takes no lr_scheduler."
            )
        source = self.make_pair_source(
            teacher, teacher_solver, teacher_steps, teacher_rtol, teacher_atol
        )
        kwargs["sample_shape"] = teacher_sample_shape(kwargs.get("sample_shape"), source)
        super().__init__(
            net, coupling=self.pair_coupling(coupling, online), sample_steps=sample_steps, **kwargs
        )
        self.init_teacher_pairs(source, online, init_from_teacher, type(self).__name__)
        self.distance = check_choice(distance, DISTANCES, "distance")
        if feature_weight < 0:
            raise ValueError(f"feature_weight={feature_weight} must be >= 0.")
        if feature_weight > 0 and features is None:
            raise ValueError("feature_weight > 0 needs a features network (features=...).")
        self.features = features.eval().requires_grad_(False) if features is not None else None
        self.feature_weight = float(feature_weight)
        self.discriminator = discriminator
        self.adversarial_weight, self.r1_gamma = float(adversarial_weight), float(r1_gamma)
        self.discriminator_optimizer = discriminator_optimizer or _adam_critic
        self.automatic_optimization = self.adversarial_weight == 0

    def distillation_loss(self, batch: Any) -> Tensor:
        """The reconstruction and perceptual terms on one batch of the teacher's pairs."""
        z, x1 = self.teacher_batch(batch)
        return self.endpoint_loss(self.generate(z), x1)

    def endpoint_loss(self, pred: Tensor, x1: Tensor) -> Tensor:
        loss = distance(pred, x1, self.distance)
        if self.features is not None and self.feature_weight > 0:
            loss = (
                loss + self.feature_weight * (self.features(pred) - self.features(x1)).pow(2).mean()
            )
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        if self.automatic_optimization:
            loss = self.distillation_loss(batch)
            self.log("train/loss", loss, prog_bar=True)
            return loss
        assert self.discriminator is not None
        opt_student, opt_critic = self.optimizers()  # type: ignore[misc]
        z, x1 = self.teacher_batch(batch)
        pred = self.generate(z)
        d_loss = discriminator_loss(self.discriminator, x1, pred, self.r1_gamma)
        opt_critic.zero_grad()
        self.manual_backward(d_loss)
        opt_critic.step()
        adversarial = adversarial_generator_loss(self.discriminator, pred)
        loss = self.endpoint_loss(pred, x1) + self.adversarial_weight * adversarial
        opt_student.zero_grad()
        self.manual_backward(loss)
        opt_student.step()
        self.log_dict({"train/loss": loss, "train/d_loss": d_loss}, prog_bar=True)
        return loss

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if not self.automatic_optimization:
            find_unused_parameters(self._trainer)  # the critic's step leaves the student idle

    def configure_optimizers(self) -> Any:
        if self.automatic_optimization:
            return super().configure_optimizers()
        assert self.discriminator is not None
        return [
            self.optimizer_factory(self.net.parameters()),
            self.discriminator_optimizer(self.discriminator.parameters()),
        ]

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        if not self.batch_is_paired(batch) and not self.online:
            return None  # plain data batches carry no teacher endpoints to compare with
        loss = self.distillation_loss(batch)
        self.log("val/loss", loss, sync_dist=True)
        return loss
