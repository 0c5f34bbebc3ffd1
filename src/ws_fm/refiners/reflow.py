r"""``ReFlow``: k-rectified flow (Liu, Gong & Liu 2022), trained on a teacher's noise-to-sample pairs.

Round ``k + 1`` trains a cold flow on the pairs ``(z, x1 = ODE[v_k](z))`` of round ``k``'s flow
with straight-line targets (``../shared/PEERS.md`` §2, in this project's time convention)::

    x_t = (1 - t) z + t x1,    u_t = x1 - z,    L = E_t || v_theta(x_t, t) - u_t ||^2

which straightens the trajectories, so that few Euler steps (even one) land near the teacher's
samples.  The student starts from the teacher's weights (``init_from_teacher``).  Pairs come
from the sample bank (``coupling="teacher_pairs"``: :class:`~ws_fm.data.WarmStartDataModule`
builds them once from :meth:`bank_generator`, a :class:`~ws_fm.teachers.TeacherPairSource`) or,
with ``online=True``, fresh from the teacher at every step (Euler 20 in Rectified Flow's code).
``real_fraction`` replaces that fraction of each batch's pairs, on average, by independent
(noise, real data) pairs: the mixing of real and synthetic endpoints across rounds.  Chain ``k``
rounds by pointing each round's ``teacher`` at the previous round's checkpoint.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..paths import PathSample
from ..teachers import TeacherPairSource
from .flow_matching import Cond, FlowMatching

__all__ = ["ReFlow"]


class ReFlow(FlowMatching):
    """A rectified flow trained on a frozen teacher's pairs.

    Args:
        net: the backbone (the teacher's architecture when ``init_from_teacher``).
        teacher: a trained cold flow (e.g. a ``FlowMatching`` checkpoint's path), frozen.
        teacher_solver, teacher_steps, teacher_rtol, teacher_atol: how pairs are made
            (``dopri5`` with tolerances, or a fixed-step solver with ``teacher_steps``).
        online: fresh pairs from the teacher at every training step (no bank).
        real_fraction: share of each batch's pairs replaced by (fresh noise, real data point).
        init_from_teacher: start from the teacher's weights.
        **kwargs: the remaining :class:`FlowMatching` arguments (time sampler, loss hooks, ...).
    """

    checkpoint_modules: ClassVar[tuple[str, ...]] = ("net", "teacher")

    def __init__(
        self,
        net: nn.Module,
        teacher: nn.Module | str,
        teacher_solver: str = "dopri5",
        teacher_steps: int = 100,
        teacher_rtol: float = 1e-5,
        teacher_atol: float = 1e-5,
        online: bool = False,
        real_fraction: float = 0.0,
        init_from_teacher: bool = True,
        coupling: Any = None,
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= real_fraction <= 1.0:
            raise ValueError(f"real_fraction={real_fraction} must lie in [0, 1].")
        source = TeacherPairSource(
            teacher, teacher_solver, teacher_steps, teacher_rtol, teacher_atol
        )
        kwargs.setdefault("sample_shape", source.sample_shape)
        if coupling is None:
            coupling = "independent" if online else "teacher_pairs"
        super().__init__(net, coupling=coupling, **kwargs)
        self.pair_source = source
        self.online, self.real_fraction = online, float(real_fraction)
        if init_from_teacher:
            try:
                self.net.load_state_dict(source.teacher.net.state_dict())
            except RuntimeError as err:
                raise ValueError(
                    "ReFlow(init_from_teacher=True): the student's net differs from the "
                    f"teacher's ({str(err).splitlines()[0]}); give the student the teacher's "
                    "architecture, or set init_from_teacher=False."
                ) from None

    @property
    def teacher(self) -> nn.Module:
        return self.pair_source.teacher

    def train(self, mode: bool = True) -> Any:
        # The teacher is frozen: keep it in eval mode (dropout, normalisation) always.
        super().train(mode)
        self.teacher.eval()
        return self

    def bank_generator(self) -> nn.Module | None:
        """The teacher-pair source whose pairs the sample bank stores (None when online)."""
        return None if self.online else self.pair_source

    def training_draw(self, batch: Any) -> tuple[PathSample, Cond]:
        x1, source, cond = self.unpack_batch(batch)
        if self.online:
            source, x1 = (a.to(self.device) for a in self.pair_source.pairs(x1.shape[0]))
        elif not self.batch_is_paired(batch):
            if self.training:
                raise ValueError(
                    "ReFlow trains on teacher pairs: give it a WarmStartDataModule (which builds "
                    "them from the teacher into the sample bank) or set online=True."
                )
            source = self.cold_source(x1.shape[0], like=x1)  # validation: plain data batches
        if self.real_fraction > 0 and self.training:
            source, x1 = self._mix_real(source, x1)
        t = self.sample_time(x1.shape[0])
        return self.path.sample(source, x1, t, self.path.draw_noise(x1)), cond

    def _mix_real(
        self, source: torch.Tensor, x1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        real = self.train_data()
        if real is None:
            raise ValueError("ReFlow(real_fraction > 0) needs a DataModule with train_data().")
        mask = torch.rand(x1.shape[0], device=x1.device) < self.real_fraction
        k = int(mask.sum())
        if k:
            idx = torch.randint(len(real), (k,))
            x1, source = x1.clone(), source.clone()
            x1[mask] = real[idx].to(x1)
            source[mask] = torch.randn_like(source[mask])
        return source, x1
