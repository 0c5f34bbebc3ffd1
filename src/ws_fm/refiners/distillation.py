r"""``OneStepDistillation``: a one-step student of a teacher flow (InstaFlow-style, PEERS.md §2-3).

The student is a flow whose single Euler step from ``t = 0`` is the generator::

    G(z) = z + v_theta(z, 0),    L = d(G(z), x1_teacher(z)) + w_feat * || f(G(z)) - f(x1) ||^2

trained to land on the teacher's endpoint ``x1 = ODE[teacher](z)`` for the same noise ``z`` (the
teacher's pairs, from the sample bank or online, as for :class:`~ws_fm.refiners.ReFlow`), and
initialised from the teacher (or from a ReFlow model, whose near-straight paths make the one-step
target easier).  ``d`` is ``l2`` (default), ``l1`` or ``pseudo_huber``; ``features`` is an optional
frozen feature network for a perceptual term (offline: the data set's classifier, or the FID
Inception network).  Sampling is ``sample(n)``: one Euler step, 1 NFE.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from .._checks import check_choice
from ..losses import DISTANCES, distance
from .flow_matching import FlowMatching
from .teacher_pairs import OneStepGeneratorMixin, TeacherPairsMixin

__all__ = ["OneStepDistillation"]


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
    """

    checkpoint_modules: ClassVar[tuple[str, ...]] = ("net", "teacher", "features")

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
        coupling: Any = None,
        **kwargs: Any,
    ) -> None:
        source = self.make_pair_source(
            teacher, teacher_solver, teacher_steps, teacher_rtol, teacher_atol
        )
        kwargs.setdefault("sample_shape", source.sample_shape)
        kwargs.setdefault("sample_steps", 1)
        super().__init__(net, coupling=self.pair_coupling(coupling, online), **kwargs)
        self.init_teacher_pairs(source, online, init_from_teacher, type(self).__name__)
        self.distance = check_choice(distance, DISTANCES, "distance")
        if feature_weight < 0:
            raise ValueError(f"feature_weight={feature_weight} must be >= 0.")
        if feature_weight > 0 and features is None:
            raise ValueError("feature_weight > 0 needs a features network (features=...).")
        self.features = features.eval().requires_grad_(False) if features is not None else None
        self.feature_weight = float(feature_weight)

    def distillation_loss(self, batch: Any) -> Tensor:
        z, x1 = self.teacher_batch(batch)
        pred = self.generate(z)
        loss = distance(pred, x1, self.distance)
        if self.features is not None and self.feature_weight > 0:
            loss = (
                loss + self.feature_weight * (self.features(pred) - self.features(x1)).pow(2).mean()
            )
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss = self.distillation_loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        if not self.batch_is_paired(batch) and not self.online:
            return None  # plain data batches carry no teacher endpoints to compare with
        loss = self.distillation_loss(batch)
        self.log("val/loss", loss, sync_dist=True)
        return loss
