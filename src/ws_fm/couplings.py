r"""Couplings: how a batch of sources (noise or drafts) is paired with a batch of data.

A coupling is an object with one owner of its settings.  Called on ``(source, x1, cond)`` (same
batch size) it returns them re-paired: row ``i`` of the returned ``source`` travels to row ``i``
of the returned ``x1`` (and ``cond``, the conditioning that belongs to ``x1``, follows ``x1``).

- ``independent``: the pairs as drawn (random pairs; always valid; I-CFM when cold).
- ``minibatch_ot``: the exact optimal assignment
  :math:`\pi^* = \arg\min_\pi \sum_i \lVert s_i - x_{\pi(i)} \rVert^2` within the batch (OT-CFM
  when cold, Tong et al.).  For integer token sequences the cost is the Hamming distance.  The
  permutation is exact (an assignment, not a plan sampled with replacement).
- ``nearest_neighbour``: each source paired with its nearest training point (squared L2),
  ignoring the batch's ``x1``.  Straight paths, but it invites memorisation.  Its pairs are
  precomputed in the sample bank when there is one.
- ``teacher_forced`` (token drafts): each training sequence ``x1`` paired with the draft model
  run along it (each token drawn given the real prefix), so ``xd`` is ``x1`` corrupted the way
  the draft errs.  Its pairs exist only in the sample bank.

A coupling's lifecycle: ``prepare(train_data)`` once the training data is known (nearest-neighbour
index), then ``__call__`` on every batch.  When a :class:`~ws_fm.data.WarmStartDataModule` builds
the bank of drafts it asks the coupling for the bank's rows (:meth:`Coupling.bank_rows`) and
whether batches come precomputed (:attr:`Coupling.pairs_in_bank`); the DataModule keeps no
coupling setting of its own.

Write your own by subclassing :class:`Coupling` (and give it by ``class_path`` in YAML).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, ClassVar

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
    "BankOnlyCoupling",
    "TeacherForcedCoupling",
    "TeacherPairCoupling",
    "COUPLINGS",
    "OT_SOLVERS",
    "resolve_coupling",
    "get_coupling",
    "optimal_assignment",
    "nearest_indices",
    "assignment_cost",
]

Cond = dict[str, Tensor] | None

#: Exact assignment solvers: ``scipy`` (``linear_sum_assignment``, a shortest augmenting path
#: method) and ``pot`` (POT's network simplex ``ot.emd``; its plan of uniform weights is a
#: permutation matrix).  Which is faster depends on the data, not only on its dimension
#: (``benchmarks/results/ot_solvers.md``: POT 1.5-3x faster on clustered or 2-D data, scipy
#: about 1.8x faster on images against noise), so :class:`MinibatchOTCoupling`'s ``auto`` times
#: both on its first batches and keeps the faster.
OT_SOLVERS = ("scipy", "pot")


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).float()


def assignment_cost(source: Tensor, target: Tensor) -> Tensor:
    """The ``(n, n)`` cost of pairing ``source[i]`` with ``target[j]``: squared L2, or the
    Hamming distance (number of positions that differ) for integer tokens."""
    if source.dtype.is_floating_point:
        return torch.cdist(_flat(source), _flat(target)).pow_(2)
    s, t = source.reshape(len(source), -1), target.reshape(len(target), -1)
    return (s[:, None, :] != t[None, :, :]).sum(-1)


def optimal_assignment(source: Tensor, target: Tensor, solver: str = "scipy") -> Tensor:
    """Permutation ``perm`` minimising ``sum_i cost(source[i], target[perm[i]])`` exactly
    (:func:`assignment_cost`), by the named solver of :data:`OT_SOLVERS`."""
    check_choice(solver, OT_SOLVERS, "ot_solver")
    if source.shape[0] != target.shape[0]:
        raise ValueError(
            f"minibatch_ot needs equal batch sizes, got {source.shape[0]} sources and "
            f"{target.shape[0]} data points."
        )
    cost = assignment_cost(source, target).detach().cpu().double().numpy()
    if not np.isfinite(cost).all():
        raise ValueError(
            "minibatch_ot got non-finite sources or data (NaN or inf): check the drafts and the "
            "data (a corrupt draft bank is one cause)."
        )
    if solver == "scipy":
        rows, cols = linear_sum_assignment(cost)
        perm = np.empty_like(cols)
        perm[rows] = cols
    else:
        import ot

        w = np.full(len(cost), 1.0 / len(cost))
        perm = ot.emd(w, w, cost).argmax(1)
    return torch.as_tensor(perm, device=target.device, dtype=torch.long)


@torch.no_grad()
def nearest_indices(query: Tensor, reference: Tensor, chunk: int = 4096) -> Tensor:
    """Index into ``reference`` of each query row's nearest neighbour (squared L2); the
    reference should be on the query's device already (it is moved otherwise)."""
    ref = _flat(reference.to(query.device))
    out = [torch.cdist(_flat(q), ref).argmin(dim=1) for q in query.split(chunk)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=query.device)


def _take(cond: Cond, idx: Tensor) -> Cond:
    return None if cond is None else {k: v[idx.to(v.device)] for k, v in cond.items()}


class Coupling:
    """Base class: ``__call__(source, x1, cond=None) -> (source, x1, cond)`` re-paired.

    Class attributes a subclass sets:

    - ``name``: the registered name (``coupling: <name>`` in YAML).
    - ``supports_tokens``: valid for integer token sequences.
    - ``pairs_in_bank``: its pairs are precomputed when a sample bank is built, and batches from
      that bank arrive paired (``{"paired": True}``); they are not re-paired.
    - ``pairs_in_batch``: it can also pair a batch on the fly (False for ``teacher_forced``,
      whose pairs need the draft run along the data: validation batches, which come from the
      data alone, are then scored with the pairs as drawn).
    """

    name: ClassVar[str] = ""
    supports_tokens: ClassVar[bool] = True
    pairs_in_bank: ClassVar[bool] = False
    pairs_in_batch: ClassVar[bool] = True

    def prepare(self, train_data: Tensor) -> None:
        """Called with the training data before training (no-op by default)."""

    def __call__(
        self, source: Tensor, x1: Tensor, cond: Cond = None
    ) -> tuple[Tensor, Tensor, Cond]:
        raise NotImplementedError

    def bank_size(self, requested: int, reference: Tensor) -> int:
        """Rows the sample bank holds when ``requested`` are asked for."""
        return requested

    def bank_rows(
        self,
        generator: Any,
        start: int,
        n: int,
        reference: Tensor,
        rng: torch.Generator,
    ) -> dict[str, Tensor]:
        """Rows ``start .. start + n`` of the sample bank: the column ``source`` (drafts drawn
        from ``generator.sample``) and, for couplings with ``pairs_in_bank``, ``pair_index``
        (the row of ``reference``, the training data, each source is paired with)."""
        return {"source": generator.sample(n, generator=rng)}

    def bank_spec(self) -> dict[str, Any]:
        """What the bank's rows depend on besides the generator, seed and size (part of its
        fingerprint): nothing for couplings that store free drafts (every in-batch coupling
        shares that bank), the class and :meth:`config` for those that fill it their own way."""
        if type(self).bank_rows is Coupling.bank_rows:
            return {"rows": "source"}
        cls = type(self)
        return {"rows": f"{cls.__module__}.{cls.__qualname__}", "config": self.config()}

    def config(self) -> dict[str, Any]:
        """The settings that change the pairs (part of the sample bank's fingerprint)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class IndependentCoupling(Coupling):
    """Random pairs: the batch as drawn (I-CFM when cold; the warm start's ablation)."""

    name = "independent"

    def __call__(
        self, source: Tensor, x1: Tensor, cond: Cond = None
    ) -> tuple[Tensor, Tensor, Cond]:
        return source, x1, cond


class MinibatchOTCoupling(Coupling):
    """Exact optimal assignment in the batch (squared L2; Hamming for tokens).

    Args:
        solver: exact assignment solver, one of :data:`OT_SOLVERS`, or ``auto`` (default):
            for real-valued data it times both solvers on the first ``2 * auto_trials`` batches
            (alternating) and then keeps the faster (:attr:`chosen`); for tokens, whose integer
            Hamming costs have ties that two solvers may break differently, it is ``scipy``, so
            that runs are reproducible.  Every choice returns an optimal permutation.
        auto_trials: batches timed per solver by ``auto``.
    """

    name = "minibatch_ot"

    def __init__(self, solver: str = "auto", auto_trials: int = 3) -> None:
        self.solver = check_choice(solver, (*OT_SOLVERS, "auto"), "solver")
        self.auto_trials = auto_trials
        self._times: dict[str, list[float]] = {s: [] for s in OT_SOLVERS}
        self._chosen: str | None = None if solver == "auto" else solver

    @property
    def chosen(self) -> str | None:
        """The solver in use (None while ``auto`` is still timing)."""
        return self._chosen

    def __call__(
        self, source: Tensor, x1: Tensor, cond: Cond = None
    ) -> tuple[Tensor, Tensor, Cond]:
        if self._chosen is None and not source.dtype.is_floating_point:
            self._chosen = "scipy"
        if self._chosen is not None:
            perm = optimal_assignment(source, x1, self._chosen)
        else:
            trial = OT_SOLVERS[sum(map(len, self._times.values())) % len(OT_SOLVERS)]
            start = time.perf_counter()
            perm = optimal_assignment(source, x1, trial)
            self._times[trial].append(time.perf_counter() - start)
            if all(len(v) >= self.auto_trials for v in self._times.values()):
                self._chosen = min(self._times, key=lambda s: statistics.median(self._times[s]))
        return source, x1[perm], _take(cond, perm)


class NearestNeighbourCoupling(Coupling):
    """Each source with its nearest training point; :meth:`prepare` sets the training data.

    With a sample bank the pairs are precomputed once (``pair_index``); otherwise (a cold flow,
    validation batches) they are found in the batch against the training data, which is moved
    to the batch's device once and kept there.
    """

    name = "nearest_neighbour"
    supports_tokens = False
    pairs_in_bank = True

    def __init__(self) -> None:
        self._reference: Tensor | None = None
        self._on_device: Tensor | None = None

    def prepare(self, train_data: Tensor) -> None:
        self._reference, self._on_device = train_data, None

    @property
    def reference(self) -> Tensor | None:
        return self._reference

    def _reference_on(self, like: Tensor) -> Tensor:
        if self._reference is None:
            raise RuntimeError(
                "nearest_neighbour coupling has no training data: call prepare(train_data) "
                "(the refiners do this in setup)."
            )
        ref = self._on_device
        if ref is None or ref.device != like.device or ref.dtype != like.dtype:
            ref = self._on_device = self._reference.to(like.device, like.dtype)
        return ref

    def __call__(
        self, source: Tensor, x1: Tensor, cond: Cond = None
    ) -> tuple[Tensor, Tensor, Cond]:
        if cond is not None:
            raise ValueError(
                "nearest_neighbour pairs sources with training points, whose conditioning is not "
                "known here: use independent or minibatch_ot with conditional models."
            )
        ref = self._reference_on(x1)
        return source, ref[nearest_indices(source, ref)], None

    def bank_rows(
        self, generator: Any, start: int, n: int, reference: Tensor, rng: torch.Generator
    ) -> dict[str, Tensor]:
        xd = generator.sample(n, generator=rng)
        return {"source": xd, "pair_index": nearest_indices(xd, reference)}


class BankOnlyCoupling(Coupling):
    """Base of couplings whose pairs exist only in the sample bank (nothing to pair in a batch):
    subclasses implement :meth:`bank_rows` and say in ``built_from`` what fills the bank."""

    pairs_in_bank = True
    pairs_in_batch = False
    built_from: ClassVar[str] = "the refiner's generator"

    def __call__(
        self, source: Tensor, x1: Tensor, cond: Cond = None
    ) -> tuple[Tensor, Tensor, Cond]:
        raise ValueError(
            f"{self.name} pairs are precomputed in the sample bank: train with "
            f"ws_fm.data.WarmStartDataModule, which builds them from {self.built_from}."
        )


class TeacherForcedCoupling(BankOnlyCoupling):
    """Each training sequence with the draft run along it (``generator.teacher_force(x1)``).

    The pairs exist only in the sample bank, which holds the first ``bank_size`` training
    sequences' drafts (docs/design.md §1).
    """

    name = "teacher_forced"
    built_from = "the refiner's draft"

    def bank_size(self, requested: int, reference: Tensor) -> int:
        return min(requested, len(reference))

    def bank_rows(
        self, generator: Any, start: int, n: int, reference: Tensor, rng: torch.Generator
    ) -> dict[str, Tensor]:
        if not hasattr(generator, "teacher_force"):
            raise ValueError(
                f"coupling='teacher_forced' needs a draft with teacher_force(x1) (e.g. NGramDraft, "
                f"LSTMDraft); {type(generator).__name__} has none."
            )
        xd = generator.teacher_force(reference[start : start + n], generator=rng)
        return {"source": xd, "pair_index": torch.arange(start, start + n)}


class TeacherPairCoupling(BankOnlyCoupling):
    """Each noise ``z`` with the teacher's sample from it (ReFlow's and distillation's pairs).

    The pairs exist only in the sample bank: its generator is a
    :class:`ws_fm.teachers.TeacherPairSource`, whose ``pairs(n, generator)`` fills the columns
    ``source`` (``z``) and ``target`` (``x1``); batches then train on them as they are.
    """

    name = "teacher_pairs"
    supports_tokens = False
    built_from = "a teacher (a ws_fm.teachers.TeacherPairSource generator)"

    def bank_rows(
        self, generator: Any, start: int, n: int, reference: Tensor, rng: torch.Generator
    ) -> dict[str, Tensor]:
        if not hasattr(generator, "pairs"):
            raise ValueError(
                f"coupling='teacher_pairs' needs a generator with pairs(n, generator) (a "
                f"ws_fm.teachers.TeacherPairSource); {type(generator).__name__} has none."
            )
        z, x1 = generator.pairs(n, generator=rng)
        return {"source": z, "target": x1}


COUPLINGS: dict[str, type[Coupling]] = {
    c.name: c
    for c in (
        IndependentCoupling,
        MinibatchOTCoupling,
        NearestNeighbourCoupling,
        TeacherForcedCoupling,
        TeacherPairCoupling,
    )
}


def resolve_coupling(coupling: str | Coupling, tokens: bool = False) -> Coupling:
    """A :class:`Coupling` from a registered name (:data:`COUPLINGS`) or an instance; with
    ``tokens`` it must support integer token sequences."""
    if isinstance(coupling, str):
        coupling = COUPLINGS[check_choice(coupling, COUPLINGS, "coupling")]()
    elif not isinstance(coupling, Coupling):
        raise ValueError(
            f"coupling={coupling!r} is neither a name ({', '.join(COUPLINGS)}) nor a "
            "ws_fm.couplings.Coupling."
        )
    if tokens and not coupling.supports_tokens:
        ok = [n for n, c in COUPLINGS.items() if c.supports_tokens]
        raise ValueError(
            f"coupling={coupling.name or type(coupling).__name__!r} does not apply to token "
            f"sequences; choose one of {', '.join(map(repr, ok))}."
        )
    return coupling


def get_coupling(name: str) -> Coupling:
    """A coupling by name: one of :data:`COUPLINGS`."""
    return resolve_coupling(name)
