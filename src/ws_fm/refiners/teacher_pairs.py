"""``TeacherPairsMixin``: what the systems trained on a teacher's pairs share (ReFlow, one-step
distillation): the frozen teacher and its pair source, where pairs come from (the sample bank, or
online), initialisation from the teacher, and the teacher in checkpoints."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from ..teachers import TeacherPairSource

__all__ = ["TeacherPairsMixin"]


class TeacherPairsMixin:
    """Put before :class:`~ws_fm.refiners.FlowMatching` in the bases.  The subclass builds its
    source with :meth:`make_pair_source` before the cold system's ``__init__`` (which needs the
    sample shape and the coupling, :meth:`pair_coupling`) and calls :meth:`init_teacher_pairs`
    after it."""

    checkpoint_modules: ClassVar[tuple[str, ...]] = ("net", "teacher")
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
            try:
                self.net.load_state_dict(source.teacher.net.state_dict())  # type: ignore[attr-defined]
            except RuntimeError as err:
                raise ValueError(
                    f"{who}(init_from_teacher=True): the student's net differs from the "
                    f"teacher's ({str(err).splitlines()[0]}); give the student the teacher's "
                    "architecture, or set init_from_teacher=False."
                ) from None

    @property
    def teacher(self) -> nn.Module:
        return self.pair_source.teacher

    def train(self, mode: bool = True) -> Any:
        # The teacher is frozen: keep it in eval mode (dropout, normalisation) always.
        super().train(mode)  # type: ignore[misc]
        self.teacher.eval()
        return self

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
