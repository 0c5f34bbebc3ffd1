r"""Couplings: how a batch of sources (noise or drafts) is paired with a batch of data.

A coupling takes ``source`` and ``x1`` (same batch size) and returns them re-paired: row ``i``
of the returned ``source`` travels to row ``i`` of the returned ``x1``.

- ``independent``: the pairs as drawn (random pairs; always valid).
- ``minibatch_ot``: the exact optimal assignment :math:`\pi^* = \arg\min_\pi \sum_i
  \lVert s_i - x_{\pi(i)} \rVert^2` within the batch (``scipy.optimize.linear_sum_assignment``).
  Straighter paths; cold ``minibatch_ot`` is OT-CFM (Tong et al.).  For integer token
  sequences the cost is the Hamming distance.
- ``nearest_neighbour``: each source paired with its nearest point of a reference set (the
  training data), ignoring the batch's ``x1``.  Straight paths, but it invites memorisation.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from ._checks import check_choice

__all__ = [
    "Coupling",
    "IndependentCoupling",
    "MinibatchOTCoupling",
    "NearestNeighbourCoupling",
    "COUPLINGS",
    "get_coupling",
    "optimal_assignment",
    "nearest_indices",
]


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).float()


def optimal_assignment(source: Tensor, target: Tensor) -> Tensor:
    """Permutation ``perm`` minimising ``sum_i ||source[i] - target[perm[i]]||^2``, or the
    Hamming distance ``sum_i #{j: source[i, j] != target[perm[i], j]}`` for integer tokens."""
    if source.shape[0] != target.shape[0]:
        raise ValueError(
            f"minibatch_ot needs equal batch sizes, got {source.shape[0]} sources and "
            f"{target.shape[0]} data points."
        )
    if source.dtype.is_floating_point:
        cost = torch.cdist(_flat(source), _flat(target)).pow_(2)
    else:  # token ids: Hamming distance (number of positions that differ)
        s, t = source.reshape(len(source), -1), target.reshape(len(target), -1)
        cost = (s[:, None, :] != t[None, :, :]).sum(-1)
    rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
    perm = np.empty_like(cols)
    perm[rows] = cols
    return torch.as_tensor(perm, device=target.device, dtype=torch.long)


@torch.no_grad()
def nearest_indices(query: Tensor, reference: Tensor, chunk: int = 4096) -> Tensor:
    """Index into ``reference`` of each query row's nearest neighbour (squared L2)."""
    ref = _flat(reference).to(query.device)
    out = [torch.cdist(_flat(q), ref).argmin(dim=1) for q in query.split(chunk)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=query.device)


class Coupling:
    """Base class: ``__call__(source, x1) -> (source, x1)`` re-paired."""

    name: str = ""

    def __call__(self, source: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class IndependentCoupling(Coupling):
    name = "independent"

    def __call__(self, source: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
        return source, x1


class MinibatchOTCoupling(Coupling):
    name = "minibatch_ot"

    def __call__(self, source: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
        return source, x1[optimal_assignment(source, x1)]


class NearestNeighbourCoupling(Coupling):
    """Pairs each source with its nearest reference point; call :meth:`set_reference` first."""

    name = "nearest_neighbour"

    def __init__(self, reference: Tensor | None = None) -> None:
        self.reference = reference

    def set_reference(self, reference: Tensor) -> None:
        self.reference = reference

    def __call__(self, source: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
        if self.reference is None:
            raise RuntimeError(
                "nearest_neighbour coupling has no reference set: call set_reference(train_data) "
                "(the refiners do this in setup)."
            )
        ref = self.reference.to(x1.device, x1.dtype)
        return source, ref[nearest_indices(source, ref).to(ref.device)]


COUPLINGS: dict[str, type[Coupling]] = {
    c.name: c for c in (IndependentCoupling, MinibatchOTCoupling, NearestNeighbourCoupling)
}


def get_coupling(name: str) -> Coupling:
    """A coupling by name: one of :data:`COUPLINGS`."""
    return COUPLINGS[check_choice(name, COUPLINGS, "coupling")]()
