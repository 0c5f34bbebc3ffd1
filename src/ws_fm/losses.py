r"""Distances between a prediction and its target, shared by the systems that regress endpoints or
velocities (one-step distillation, ReFlow's 2-RF++ option, FGM's generator loss).

- ``l2``: ``mean(||d||^2)`` over every element (MSE);
- ``l1``: ``mean(|d|)``;
- ``pseudo_huber``: per sample ``sqrt(||d||^2 + c^2) - c`` (Song & Dhariwal 2023), averaged over
  the batch, with ``c = c_scale * sqrt(dim)`` (the consistency-model constant, ``c_scale =
  0.00054``).  2-RF++ (Lee et al. 2024, ``../shared/PEERS.md`` §2) writes ``c = 0.00054 * dim``
  and divides by ``dim``: :func:`pseudo_huber` with ``per_dim=True``.

The FGM generator loss (Huang et al. 2024) in both of its forms is :func:`fgm_generator_loss`;
the non-saturating GAN losses with the R1 penalty (Mescheder et al. 2018), used by the GAN draft
and the adversarial term of one-step distillation, are :func:`discriminator_loss` and
:func:`adversarial_generator_loss`::

    L_D = softplus(-D(x)) + softplus(D(G(z))) + (gamma / 2) ||grad_x D(x)||^2,
    L_G = softplus(-D(G(z)))
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_choice

__all__ = [
    "DISTANCES",
    "distance",
    "pseudo_huber",
    "fgm_generator_loss",
    "discriminator_loss",
    "adversarial_generator_loss",
]

DISTANCES = ("l2", "l1", "pseudo_huber")


def pseudo_huber(diff: Tensor, c_scale: float = 0.00054, per_dim: bool = False) -> Tensor:
    """Batch mean of ``sqrt(||d||^2 + c^2) - c``; ``c = c_scale * sqrt(dim)`` by default, or
    with ``per_dim`` 2-RF++'s ``(sqrt(||d||^2 + c^2) - c) / dim`` with ``c = c_scale * dim``."""
    flat = diff.flatten(1)
    dim = flat.shape[1]
    c = c_scale * (dim if per_dim else dim**0.5)
    value = torch.sqrt(flat.pow(2).sum(1) + c**2) - c
    return (value / dim if per_dim else value).mean()


def distance(pred: Tensor, target: Tensor, kind: str = "l2", per_dim: bool = False) -> Tensor:
    """The ``kind`` distance (``l2``, ``l1`` or ``pseudo_huber``) between ``pred`` and
    ``target``, a scalar; ``per_dim`` selects 2-RF++'s pseudo-Huber constant."""
    check_choice(kind, DISTANCES, "distance")
    diff = pred - target
    if kind == "l2":
        return diff.pow(2).mean()
    if kind == "l1":
        return diff.abs().mean()
    return pseudo_huber(diff, per_dim=per_dim)


def fgm_generator_loss(
    u_teacher: Tensor, v_online: Tensor, u_cond: Tensor, drop_l1: bool
) -> Tensor:
    r"""FGM's generator loss on a batch (``../shared/PEERS.md`` §1), summed over a sample's
    elements and averaged over the batch::

        L1 = ||u* - v||^2,    L2 = 2 <u* - v, v - u_c>
        drop_l1=True  (the paper's practice):  L2
        drop_l1=False (the theory, RealUID):   L1 + L2 = ||u* - u_c||^2 - ||v - u_c||^2

    with ``u*`` the frozen teacher's velocity, ``v`` the online flow's and ``u_c = x1 - eps`` the
    conditional velocity at ``x_t = (1 - t) eps + t x1``, ``x1 = G(z)``.  The generator's
    gradient flows through ``x_t`` (into both networks' inputs) and through ``u_c``; the
    networks' parameters are frozen by the caller."""
    if drop_l1:
        per_sample = 2 * ((u_teacher - v_online) * (v_online - u_cond)).flatten(1).sum(1)
    else:
        per_sample = ((u_teacher - u_cond).pow(2) - (v_online - u_cond).pow(2)).flatten(1).sum(1)
    return per_sample.mean()


def discriminator_loss(
    discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, r1_gamma: float = 0.0
) -> Tensor:
    """The discriminator's non-saturating loss on ``real`` and ``fake`` (detached here), with
    the R1 penalty on real samples when ``r1_gamma > 0``."""
    real = real.detach().requires_grad_(r1_gamma > 0)
    d_real = discriminator(real)
    loss = F.softplus(-d_real).mean() + F.softplus(discriminator(fake.detach())).mean()
    if r1_gamma > 0:
        (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        loss = loss + 0.5 * r1_gamma * grad.pow(2).flatten(1).sum(1).mean()
    return loss


def adversarial_generator_loss(discriminator: Callable[[Tensor], Tensor], fake: Tensor) -> Tensor:
    """The generator's non-saturating loss ``softplus(-D(fake))``."""
    return F.softplus(-discriminator(fake)).mean()
