r"""``calibrate_t0``: the latest start time a draft allows, chosen without training.

A warm start at ``t0`` places the draft where the cold path is at ``t0``; the refiner was trained
(and the cold flow integrates) from the law of the cold path's state at ``t0``.  The warm start
is safe where the two laws cannot be told apart.  For the CondOT path::

    warm:  x_t0 = t0 * xd + sigma (1 - t0) * eps        xd ~ draft
    cold:  x_t0 = t0 * x1 + (1 - t0) * eps              x1 ~ data

(any path: :meth:`~ws_fm.paths.ProbabilityPath.place`; ``sigma = 1``, the cold path's own noise,
whatever the refiner's ``sigma``: the criterion asks whether the draft can stand in for data).  On a grid of ``t0`` the calibration
measures a two-sample distance ``D(t0)`` between ``n`` warm and ``n`` cold states, and the noise
floor ``F(t0)``: the same distance between two independent sets of ``n`` cold states (real data
against real data at the same noise level), each the mean over ``repeats`` draws of the noise.  It returns the largest ``t0`` such that every grid
point up to it satisfies ``D(t0) <= (1 + tolerance) F(t0)``, with the curve.  A perfect draft
passes everywhere (the largest grid point); pure noise fails as soon as the data term shows; a
draft shifted by ``delta`` shifts the warm state's mean by ``t0 delta``, so the chosen ``t0``
falls as ``delta`` grows.

Distances (``distance``): ``"sliced_wasserstein"`` (:func:`ws_fm.metrics.sliced_wasserstein`
with 100 projections, for low-dimensional data), ``"frechet"`` (the Fréchet distance between Gaussians fitted to
``features(x)``, torchmetrics' FID computation; ``features`` defaults to the flattened sample, and
the FID feature modules of :mod:`ws_fm.metrics.fid_features` give the image version), or any
callable ``(a, b) -> float``.  ``"auto"`` picks sliced Wasserstein for up to 16 feature
dimensions and Fréchet above.  Token data (the masked path) are compared through ``features``;
by default each sequence's histogram of token ids (``MASK`` included), by sliced Wasserstein (a
vocabulary of thousands makes a Fréchet covariance too large); for text,
:class:`ws_fm.metrics.text.MaskedTextEmbedding` gives the embedding Fréchet distance (MiniLM
embeddings of the partly masked sentences, ``MASK`` written as ``[MASK]``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ._checks import check_t0
from .paths import AffinePath, MaskedPath, ProbabilityPath

__all__ = ["T0Calibration", "calibrate_t0", "calibrate_refined_t0", "DEFAULT_T0_GRID"]

DEFAULT_T0_GRID: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)

Distance = Callable[[Tensor, Tensor], float]


@dataclass(frozen=True)
class T0Calibration:
    """The chosen ``t0`` and the curve it was read from."""

    t0: float
    grid: tuple[float, ...]
    distance: tuple[float, ...]  # D(t0): warm states against cold states
    floor: tuple[float, ...]  # F(t0): cold states against cold states
    tolerance: float
    metric: str
    #: whether the chosen t0 itself passed (False: no grid point did; the smallest is returned)
    passed: bool = True
    n: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: the two columns' names (calibrate_refined_t0: refined samples against the grid's best)
    labels: tuple[str, str] = ("draft vs data", "data vs data")

    def ratios(self) -> tuple[float, ...]:
        return tuple(d / f if f > 0 else float("inf") for d, f in zip(self.distance, self.floor))

    def lines(self) -> list[str]:
        """The curve as text, one grid point per line, the chosen one marked."""
        out = [f"t0 calibration ({self.metric}, n = {self.n}, tolerance {self.tolerance:g})"]
        out.append(f"    t0   {self.labels[0]:>13}   {self.labels[1]:>12}   ratio")
        for t0, d, f, r in zip(self.grid, self.distance, self.floor, self.ratios()):
            mark = "  <- chosen" if t0 == self.t0 else ""
            ok = "ok " if d <= (1 + self.tolerance) * f else "   "
            out.append(f"{ok}{t0:5.2f}   {d:13.5g}   {f:12.5g}   {r:5.2f}{mark}")
        if not self.passed:
            out.append(
                "no grid point passed: the smallest t0 is returned (the draft is far from the data)"
            )
        return out


def _samples(source: Any, n: int, generator: torch.Generator) -> Tensor:
    if isinstance(source, Tensor):
        if len(source) < n:
            raise ValueError(f"{len(source)} samples given where {n} are needed; lower n.")
        idx = torch.randperm(len(source), generator=generator)[:n]
        return source[idx]
    sample = getattr(source, "sample", None)
    if not callable(sample):
        raise TypeError(
            f"draft={type(source).__name__} has no sample(n); pass a draft module or a tensor of "
            "drafts."
        )
    with torch.no_grad():
        out = sample(n)
    return getattr(out, "samples", out).detach().cpu()


def _histogram_features(vocab: int) -> Callable[[Tensor], Tensor]:
    def features(x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], -1).long()
        h = torch.zeros(x.shape[0], vocab + 1)
        h.scatter_add_(1, x, torch.ones_like(x, dtype=h.dtype))
        return h / x.shape[1]

    return features


class _Flat(nn.Module):
    """Rows as features, for torchmetrics' Fréchet distance."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1).double()


def frechet(a: Tensor, b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b`` ``(n, d)``
    (torchmetrics' FID computation on the rows as features)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Flat(a.shape[1]), normalize=False)
    metric.set_dtype(torch.float64)
    metric.update(a, real=True)
    metric.update(b, real=False)
    return float(metric.compute())


def _checked_grid(grid: Sequence[float], tolerance: float) -> tuple[float, ...]:
    out = tuple(sorted(check_t0(t, "grid point") for t in grid))
    if not out:
        raise ValueError("grid is empty: give at least one t0.")
    if tolerance < 0:
        raise ValueError(f"tolerance={tolerance} must be >= 0.")
    return out


def _features_and_dim(
    features: Callable[[Tensor], Tensor] | None, data: Tensor
) -> tuple[Callable[[Tensor], Tensor], int]:
    """The features (default: the flattened samples) and their dimension, which ``"auto"``
    reads."""
    if features is None:
        return (lambda x: x.reshape(x.shape[0], -1)), data[0].numel()
    return features, features(data[:2].cpu()).reshape(2, -1).shape[1]


def _metric(
    name: str | Distance, dim: int, features: Callable[[Tensor], Tensor]
) -> tuple[str, Distance]:
    if callable(name):
        return getattr(name, "__name__", "custom"), name
    if name == "auto":  # dim: of the features (0: token histograms, any vocabulary)
        name = "sliced_wasserstein" if dim <= 16 else "frechet"
    if name == "sliced_wasserstein":
        from .metrics import sliced_wasserstein

        # 100 projections: the curve needs 2 x repeats distances per grid point
        return name, lambda a, b: sliced_wasserstein(
            features(a).float(), features(b).float(), n_projections=100
        )
    if name == "frechet":
        return name, lambda a, b: frechet(features(a).flatten(1), features(b).flatten(1))
    raise ValueError(
        f"distance={name!r}: choose 'auto', 'sliced_wasserstein', 'frechet' or pass a callable."
    )


@torch.no_grad()
def calibrate_t0(
    draft: Any,
    data: Tensor,
    *,
    path: ProbabilityPath | None = None,
    grid: Sequence[float] = DEFAULT_T0_GRID,
    distance: str | Distance = "auto",
    features: nn.Module | Callable[[Tensor], Tensor] | None = None,
    n: int = 2000,
    tolerance: float = 0.5,
    sigma: float = 1.0,
    vocab_size: int | None = None,
    repeats: int = 3,
    seed: int = 0,
) -> T0Calibration:
    """The latest ``t0`` at which ``draft``'s warm start point matches the cold path's state
    (module docstring), with the curve.

    Args:
        draft: a draft (``sample(n)``) or a tensor of drafts.
        data: training data ``(N, ...)``, at least ``2 n`` rows (two independent sets give the
            noise floor; ``n`` is lowered to ``N // 2`` when fewer).
        path: the cold path (default: CondOT :class:`~ws_fm.paths.AffinePath` for real-valued
            data, :class:`~ws_fm.paths.MaskedPath` with ``vocab_size`` for token ids).
        grid: the candidate start times, each in ``[0, 1)``.
        distance: ``"auto"``, ``"sliced_wasserstein"``, ``"frechet"`` or ``(a, b) -> float``.
        features: maps samples to what the distance compares (default: the samples themselves;
            token histograms for token data; :class:`ws_fm.metrics.text.MaskedTextEmbedding`
            for text).  ``"auto"`` reads its output dimension.
        n: samples per set.
        tolerance: a grid point passes when ``D <= (1 + tolerance) F``.
        sigma: the noise scale the draft is placed with (the masked path's mask fraction).
            The default 1 places it exactly as the cold path places data, which is the
            criterion; ``t0: auto``, the CLI and the benchmark keep it whatever the refiner's
            own ``sigma`` (a refiner with ``sigma < 1`` starts off the cold path by design, so
            its start point never matches the cold path's state: with ``sigma = 0`` on the
            masked path no grid point passes).
        vocab_size: the token vocabulary (token data without a ``path``).
        repeats: draws of the path's noise per grid point; ``D`` and ``F`` are their means.
        seed: seed of every draw (drafts, data subsets, noise).
    """
    grid = _checked_grid(grid, tolerance)
    n = min(int(n), len(data) // 2)
    if n < 2:
        raise ValueError(f"data has {len(data)} rows; calibrate_t0 needs at least 4.")
    tokens = not torch.is_floating_point(data)
    if path is None:
        if tokens:
            if vocab_size is None:
                vocab_size = int(data.max()) + 1
            path = MaskedPath(vocab_size)
        else:
            path = AffinePath()
    if features is None and tokens:  # "auto" reads dim 0: sliced Wasserstein, any vocabulary
        features, dim = _histogram_features(getattr(path, "mask_id", int(data.max()) + 1)), 0
    else:
        features, dim = _features_and_dim(features, data)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(data), generator=g)
    real_a, real_b = data[perm[:n]].cpu(), data[perm[n : 2 * n]].cpu()
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed)
        drafts = _samples(draft, n, g)
    if drafts.shape[1:] != real_a.shape[1:]:
        raise ValueError(
            f"draft samples have shape {tuple(drafts.shape[1:])} but the data "
            f"{tuple(real_a.shape[1:])}: the draft must produce samples shaped like the data."
        )
    name, dist = _metric(distance, dim, features)
    curve, floor = [], []
    for t0 in grid:
        d = f = 0.0
        for _ in range(repeats):  # fresh noise each time: the mean of a noisy distance
            cold = path.place(real_a, path.draw_noise(real_a, g), t0)
            warm = path.place(drafts.to(real_a.dtype), path.draw_noise(real_a, g), t0, sigma)
            other = path.place(real_b, path.draw_noise(real_b, g), t0)
            d += float(dist(warm, cold)) / repeats
            f += float(dist(other, cold)) / repeats
        curve.append(d)
        floor.append(f)
    chosen, passed = grid[0], False
    for t0, d, f in zip(grid, curve, floor):
        if d > (1 + tolerance) * f:
            break
        chosen, passed = t0, True
    return T0Calibration(
        t0=chosen,
        grid=grid,
        distance=tuple(curve),
        floor=tuple(floor),
        tolerance=float(tolerance),
        metric=name,
        passed=passed,
        n=n,
    )


@torch.no_grad()
def calibrate_refined_t0(
    model: Any,
    data: Tensor,
    *,
    grid: Sequence[float] | None = None,
    step_size: float = 0.05,
    distance: str | Distance = "auto",
    features: nn.Module | Callable[[Tensor], Tensor] | None = None,
    n: int = 2000,
    tolerance: float = 0.1,
    seed: int = 0,
) -> T0Calibration:
    """The latest ``t0`` at which a refiner trained across ``t0``
    (:class:`~ws_fm.refiners.T0ConditionedFlowMatching`) samples as well as from its best start
    time: ``t0`` calibrated after training, on the refiner's outputs.

    At each grid point the model samples ``n`` points from ``t0`` at step size ``h``
    (``ceil((1 - t0) / h)`` NFE; the same drafts and noise at every ``t0``), and
    ``D(t0) = distance(samples, data)``.  The chosen ``t0`` is the largest with
    ``D(t0) <= (1 + tolerance) min_t D(t)``: the cheapest start at parity with the best one
    (the ``floor`` column holds ``min D``).  Unlike :func:`calibrate_t0` it sees what the
    refiner corrects, so a draft that can be told apart from the data still allows a late
    ``t0`` when the refiner repairs it; it costs sampling at every grid point.  The model is
    left at the chosen ``t0``.

    Args:
        model: a refiner with ``set_t0`` and ``sample(n, step_size=, seed=)``.
        data: data ``(N, ...)`` to compare the samples with (``n`` rows of it).
        grid: candidate start times (default: ``model.calibration_grid()``, those in its range).
        step_size: the Euler step size every ``t0`` samples with.
        distance, features: as in :func:`calibrate_t0`.
        n: samples per grid point.
        tolerance: how far above the best distance a later ``t0`` may score.
        seed: seed of the data subset and of the sampling.
    """
    if not callable(getattr(model, "set_t0", None)):
        raise TypeError(
            f"{type(model).__name__} has no set_t0: calibrate_refined_t0 needs a refiner trained "
            "across t0 (T0ConditionedFlowMatching); for one trained at a single t0, calibrate "
            "its draft with calibrate_t0."
        )
    grid = _checked_grid(grid if grid is not None else model.calibration_grid(), tolerance)
    n = min(int(n), len(data))
    g = torch.Generator().manual_seed(seed)
    real = data[torch.randperm(len(data), generator=g)[:n]].cpu()
    features, dim = _features_and_dim(features, real)
    name, dist = _metric(distance, dim, features)
    curve = []
    for t0 in grid:
        model.set_t0(t0)
        out = model.sample(n, step_size=step_size, seed=seed).samples.cpu()
        curve.append(float(dist(out.to(real.dtype), real)))
    best = min(curve)
    chosen = max(t for t, d in zip(grid, curve) if d <= (1 + tolerance) * best)
    model.set_t0(chosen)
    return T0Calibration(
        t0=chosen,
        grid=grid,
        distance=tuple(curve),
        floor=(best,) * len(grid),
        tolerance=float(tolerance),
        metric=f"{name} of refined samples, step size {step_size:g}",
        n=n,
        labels=("refined vs data", "best on grid"),
    )
