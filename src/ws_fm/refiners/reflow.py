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
rounds by pointing each round's ``teacher`` at the previous round's checkpoint, with a rising share
``p`` of synthetic pairs (``real_fraction = 1 - p``, e.g. ``p`` = 0.4, 0.65, 0.9 over three rounds;
``real_fraction = 0`` is classic 2-RF on pure teacher pairs).

2-RF++ (Lee et al. 2024) options: ``time_sampler="u_shaped"`` (density ``∝ cosh(4 (t - 1/2))``)
and ``distance="pseudo_huber"``, their ``(sqrt(||d||^2 + c^2) - c) / dim`` with ``c = 0.00054 dim``
(:func:`ws_fm.losses.pseudo_huber`) in place of the squared error.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._checks import check_choice
from ..losses import DISTANCES
from ..losses import distance as distance_fn
from ..paths import PathSample
from .flow_matching import Cond, FlowMatching
from .teacher_pairs import TeacherPairsMixin, teacher_sample_shape

__all__ = ["ReFlow"]


class ReFlow(TeacherPairsMixin, FlowMatching):
    """A rectified flow trained on a frozen teacher's pairs.

    Args:
        net: the backbone (the teacher's architecture when ``init_from_teacher``).
        teacher: a trained cold flow (e.g. a ``FlowMatching`` checkpoint's path), frozen.
        teacher_solver, teacher_steps, teacher_rtol, teacher_atol: how pairs are made
            (``dopri5`` with tolerances, or a fixed-step solver with ``teacher_steps``).
        online: fresh pairs from the teacher at every training step (no bank).
        real_fraction: share of each batch's pairs replaced by (fresh noise, real data point).
        init_from_teacher: start from the teacher's weights.
        distance: the velocity regression loss, ``l2`` (MSE, default) or 2-RF++'s
            ``pseudo_huber`` (or ``l1``).
        **kwargs: the remaining :class:`FlowMatching` arguments (time sampler, loss hooks, ...).
    """

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
        distance: str = "l2",
        coupling: Any = None,
        **kwargs: Any,
    ) -> None:
        check_choice(distance, DISTANCES, "distance")
        if not 0.0 <= real_fraction <= 1.0:
            raise ValueError(f"real_fraction={real_fraction} must lie in [0, 1].")
        source = self.make_pair_source(
            teacher, teacher_solver, teacher_steps, teacher_rtol, teacher_atol
        )
        kwargs["sample_shape"] = teacher_sample_shape(kwargs.get("sample_shape"), source)
        super().__init__(net, coupling=self.pair_coupling(coupling, online), **kwargs)
        self.init_teacher_pairs(source, online, init_from_teacher, type(self).__name__)
        self.real_fraction = float(real_fraction)
        self.distance = distance

    def loss(self, pred: torch.Tensor, target: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return distance_fn(pred, target, self.distance, per_dim=True)

    def training_draw(self, batch: Any) -> tuple[PathSample, Cond]:
        x1, source, cond = self.unpack_batch(batch)
        if self.online or self.batch_is_paired(batch) or self.training:
            source, x1 = self.teacher_batch(batch)
        else:
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
