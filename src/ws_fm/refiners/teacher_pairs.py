"""Mixins of the systems trained against a frozen teacher flow.

- :class:`TeacherMixin` (ReFlow, one-step distillation, FGM): the teacher frozen and always in
  eval mode, the student initialised from its weights (with a clear error when the
  architectures differ), the teacher saved in checkpoints;
- :class:`TeacherPairsMixin` (ReFlow, distillation): the teacher's pairs, from the sample bank or
  online;
- :class:`OneStepGeneratorMixin` (distillation, FGM): ``G(z) = z + v_theta(z, 0)``, one Euler step
  of the student from ``t = 0``, so that ``sample(n)`` (1 NFE) is the generator.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..teachers import TeacherPairSource

__all__ = ["TeacherMixin", "TeacherPairsMixin", "OneStepGeneratorMixin", "teacher_sample_shape"]


def teacher_sample_shape(given: Any, teacher: Any) -> tuple[int, ...]:
    """A student's sample shape: the teacher's, unless one is given (``None``, as the CLI passes
    the default explicitly, means the teacher's); a given shape must be the teacher's."""
    shape = tuple(teacher.sample_shape)
    if given is not None and tuple(given) != shape:
        raise ValueError(
            f"sample_shape={tuple(given)} differs from the teacher's samples {shape}: leave it "
            "out (students take the teacher's)."
        )
    return shape


class TeacherMixin:
    """Put before :class:`~ws_fm.refiners.FlowMatching` in the bases; the subclass provides
    ``teacher`` (an attribute or a property)."""

    checkpoint_modules: ClassVar[tuple[str, ...]] = ("net", "teacher")
    teacher: nn.Module

    def init_from_teacher_weights(self, module: nn.Module, who: str, what: str = "net") -> None:
        """Copy the teacher's backbone weights into ``module`` (the student's ``what``)."""
        try:
            module.load_state_dict(self.teacher.net.state_dict())  # type: ignore[attr-defined]
        except RuntimeError as err:
            raise ValueError(
                f"{who}: the student's {what} differs from the teacher's net "
                f"({str(err).splitlines()[0]}); give it the teacher's architecture, or do not "
                "initialise it from the teacher."
            ) from None

    def check_draft_against(self, train: Tensor, tokenizer: Any = None) -> None:
        """Refuse a teacher trained on data of another shape, before any pair is drawn (the
        :class:`~ws_fm.data.WarmStartDataModule` calls this before it builds a bank; ``setup``
        calls it otherwise)."""
        want, got = tuple(self.teacher.sample_shape), tuple(train.shape[1:])  # type: ignore[attr-defined]
        if want != got:
            raise ValueError(
                f"the teacher makes samples of shape {want} but the data has shape {got}: point "
                f"{type(self).__name__}'s teacher at a checkpoint trained on this data set."
            )

    def setup(self, stage: str) -> None:
        train = self.train_data()  # type: ignore[attr-defined]
        if train is not None:
            self.check_draft_against(train)
        super().setup(stage)  # type: ignore[misc]

    def train(self, mode: bool = True) -> Any:
        # The teacher is frozen: keep it in eval mode (dropout, normalisation) always.
        super().train(mode)  # type: ignore[misc]
        self.teacher.eval()
        return self


class TeacherPairsMixin(TeacherMixin):
    """The teacher's pairs.  The subclass builds its source with :meth:`make_pair_source` before
    the cold system's ``__init__`` (which needs the sample shape and the coupling,
    :meth:`pair_coupling`) and calls :meth:`init_teacher_pairs` after it."""

    pair_source: TeacherPairSource
    online: bool

    @staticmethod
    def make_pair_source(
        teacher: nn.Module | str, solver: str, steps: int, rtol: float, atol: float
    ) -> TeacherPairSource:
        return TeacherPairSource(teacher, solver, steps, rtol, atol)

    @staticmethod
    def pair_coupling(coupling: Any, online: bool) -> Any:
        """The bank's ``teacher_pairs`` coupling (offline) unless one is given; online pairs
        are drawn here and need none (``independent``, for evaluation batches)."""
        if coupling is not None:
            return coupling
        return "independent" if online else "teacher_pairs"

    def init_teacher_pairs(
        self, source: TeacherPairSource, online: bool, init_from_teacher: bool, who: str
    ) -> None:
        self.pair_source, self.online = source, bool(online)
        if init_from_teacher:
            self.init_from_teacher_weights(self.net, f"{who}(init_from_teacher=True)")  # type: ignore[attr-defined]

    @property
    def teacher(self) -> nn.Module:  # type: ignore[override]
        return self.pair_source.teacher

    def bank_generator(self) -> nn.Module | None:
        """The teacher-pair source whose pairs the sample bank stores (None when online)."""
        return None if self.online else self.pair_source

    def teacher_batch(self, batch: Any) -> tuple[Tensor, Tensor]:
        """``(z, x1_teacher)`` of a batch: fresh from the teacher when online, else the bank's."""
        x1, source, _ = self.unpack_batch(batch)  # type: ignore[attr-defined]
        if self.online:
            z, x1 = self.pair_source.pairs(x1.shape[0])
            device = self.device  # type: ignore[attr-defined]
            return z.to(device), x1.to(device)
        if not self.batch_is_paired(batch):  # type: ignore[attr-defined]
            raise ValueError(
                f"{type(self).__name__} trains on teacher pairs: give it a WarmStartDataModule "
                "(which builds them from the teacher into the sample bank) or set online=True."
            )
        return source, x1


class OneStepGeneratorMixin:
    """``G(z) = z + v_theta(z, 0)``; sampling with one Euler step from noise is ``G``."""

    net: nn.Module

    def generate(self, z: Tensor) -> Tensor:
        """``G(z) = z + v_theta(z, 0)``: one Euler step of the student from ``t = 0``."""
        return z + self.net(z, torch.zeros(z.shape[0], device=z.device))
