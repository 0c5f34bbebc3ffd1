r"""Discrete flow matching over token sequences: cold (masked source) and warm (drafts at ``t0``).

Training draws ``t ~ U[t0, 1]`` and ``x_t`` from the masked mixture path
(:class:`~ws_fm.paths.MaskedPath`) and minimises the cross-entropy of
``p_theta(x1 | x_t, t)`` on every position::

    L = E_t E_{x_t} [ - sum_i log p_theta(x1[i] | x_t, t) ] / L

Sampling is the mixture-path Euler sampler (:func:`~ws_fm.solvers.discrete_euler`), one network
evaluation per step, so a warm start at ``t0`` with the cold flow's step size needs
``(1 - t0)`` of its NFE.  ``sampler`` chooses what a step may redraw: every position (``jump``,
the plain sampler), only positions not yet committed (``committed``), or, in addition, only the
draft tokens whose predicted probability is below ``threshold`` (``gated``, confidence-gated
correction).  A backbone built with ``committed_input`` (``TokenTransformer(committed_input=
True)``) is trained and sampled with the committed positions as an input, so it can tell a draft
token from one already settled.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..couplings import Coupling
from ..data.tokenizer import BPETokenizer
from ..lookups import tokenizer_of
from ..paths import KappaScheduler, MaskedPath, PathSample, ProbabilityPath, WarmStart
from ..solvers import DISCRETE_SAMPLERS, SolveResult, discrete_euler, num_steps
from .flow_matching import Cond, FlowMatching
from .warm_start import WarmStartMixin

__all__ = ["DiscreteFlowMatching", "WarmStartDiscreteFlowMatching"]


class DiscreteFlowMatching(FlowMatching):
    """Cold-start discrete flow matching from the all-``MASK`` sequence.

    Args:
        net: ``net(x, t, **cond) -> logits (B, L, V)`` with a ``vocab_size`` attribute ``V``
            (e.g. :class:`~ws_fm.nets.TokenTransformer`); ``MASK`` is id ``V``.
        coupling: a :class:`~ws_fm.couplings.Coupling` or a name that applies to tokens:
            ``independent`` (default for the cold flow) or ``minibatch_ot`` (Hamming); warm
            refiners also take ``teacher_forced``.
        sample_steps: default number of Euler steps over ``[t_start, 1]``.
        scheduler: ``kappa_t`` of the masked path (default linear, ``kappa_t = t``).
        path: the path (default: :class:`~ws_fm.paths.MaskedPath` with ``scheduler``).
        sampler: ``jump`` (default: every position may be redrawn at every step), ``committed``
            (a position is drawn once, then frozen) or ``gated`` (as ``committed``, and a draft
            token survives its jump when ``p(token) >= threshold``); see
            :func:`~ws_fm.solvers.discrete_euler`.
        threshold: the ``gated`` sampler's confidence threshold, in ``(0, 1]``.
        **kwargs: ``time_sampler``, ``optimizer``, ``lr_scheduler``, ``sample_shape`` as in
            :class:`FlowMatching`.
    """

    is_discrete = True

    def __init__(
        self,
        net: nn.Module,
        coupling: str | Coupling = "independent",
        sample_steps: int = 100,
        scheduler: KappaScheduler | None = None,
        path: ProbabilityPath | None = None,
        sampler: str = "jump",
        threshold: float = 0.5,
        **kwargs: Any,
    ) -> None:
        if sampler not in DISCRETE_SAMPLERS:
            raise ValueError(f"sampler={sampler!r}: choose one of {', '.join(DISCRETE_SAMPLERS)}.")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold={threshold} must be in (0, 1].")
        self.sampler, self.threshold = sampler, float(threshold)
        vocab = getattr(net, "vocab_size", None)
        if not isinstance(vocab, int):
            raise ValueError(
                f"net={type(net).__name__} has no integer vocab_size; use a token backbone such "
                "as ws_fm.nets.TokenTransformer."
            )
        self.mask_id = vocab
        self._scheduler = scheduler
        # A new name: the hyperparameters record the argument as given (None), not the default.
        chosen = path if path is not None else self.default_path()
        super().__init__(net, coupling=coupling, sample_steps=sample_steps, path=chosen, **kwargs)

    @property
    def vocab_size(self) -> int:
        return self.mask_id

    def default_path(self) -> ProbabilityPath:
        return MaskedPath(self.mask_id, self._scheduler)

    @property
    def committed_input(self) -> bool:
        """Whether the backbone takes the committed positions as an input."""
        return bool(getattr(self.net, "committed_input", False))

    def path_inputs(self, ps: PathSample) -> dict[str, Tensor]:
        if self.committed_input and ps.committed is not None:
            return {"committed": ps.committed}
        return {}

    def cold_source(self, n: int, like: Tensor | None = None) -> Tensor:
        """The cold source: ``n`` all-``MASK`` sequences."""
        shape = like.shape[1:] if like is not None else self._require_sample_shape()
        device = like.device if like is not None else self.device
        return torch.full((n, *shape), self.mask_id, dtype=torch.long, device=device)

    def loss(self, pred: Tensor, target: Tensor, t: Tensor) -> Tensor:
        """Cross-entropy of the predicted ``x1`` distribution on every position."""
        return F.cross_entropy(pred.reshape(-1, pred.shape[-1]).float(), target.reshape(-1))

    #: the data's tokenizer (set in ``setup``, saved in checkpoints), to decode samples
    tokenizer: BPETokenizer | None = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.tokenizer is not None:
            checkpoint["tokenizer"] = self.tokenizer.to_json()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if checkpoint.get("tokenizer"):
            self.tokenizer = BPETokenizer.from_json(checkpoint["tokenizer"])

    def check_solver(self, solver: str | None) -> str:
        if solver not in (None, "euler"):
            raise ValueError(f"solver={solver!r}: discrete flows sample with 'euler' only.")
        return "euler"

    @torch.no_grad()
    def integrate(  # type: ignore[override]
        self,
        x_start: Tensor,
        t_start: float,
        solver: str | None = None,
        steps: int | None = None,
        step_size: float | None = None,
        return_trajectory: bool = False,
        cond: Cond = None,
        generator: torch.Generator | None = None,
    ) -> SolveResult:
        """Run the mixture-path Euler sampler (this refiner's ``sampler`` and ``threshold``)
        from ``x_start`` at ``t_start`` to 1, with the path's jump probabilities and the NFE
        counted on the backbone's calls (``sample`` draws ``n`` sequences this way;
        ``generator`` drives the path's noise and the jumps)."""
        self.check_solver(solver)
        if steps is not None and step_size is not None:
            raise ValueError("give at most one of steps and step_size.")
        if step_size is not None:
            steps = num_steps(t_start, step_size)
        field = self.velocity(cond)
        logits = (
            (lambda x, t, committed: field(x, t, committed=committed))
            if self.committed_input
            else field
        )
        return discrete_euler(
            logits,
            x_start,
            t_start,
            steps or self.sample_steps,
            generator,
            return_trajectory=return_trajectory,
            jump_probability=self.path.jump_probability,  # type: ignore[attr-defined]
            network=self.net,
            sampler=self.sampler,
            threshold=self.threshold,
            mask_id=self.mask_id,
            committed_input=self.committed_input,
        )

    def setup(self, stage: str) -> None:
        super().setup(stage)
        tok = tokenizer_of(self._trainer)
        if tok is not None and tok.vocab_size != self.vocab_size:
            raise ValueError(
                f"the data's tokenizer has {tok.vocab_size} tokens but the network's vocab_size "
                f"is {self.vocab_size}: set net vocab_size to {tok.vocab_size}."
            )
        if tok is not None:
            self.tokenizer = tok
        train = self.train_data()
        if train is not None and (train.dtype != torch.long or int(train.max()) >= self.mask_id):
            raise ValueError(
                f"{type(self).__name__} needs token ids in [0, {self.mask_id}) as data (got "
                f"dtype {train.dtype}, max {train.max().item()}); use ws_fm.data.TextDataModule."
            )


class WarmStartDiscreteFlowMatching(WarmStartMixin, DiscreteFlowMatching):
    """Warm-start discrete flow matching: refine token drafts from ``t0`` to 1.

    Args:
        net: the token backbone (``vocab_size`` attribute; ``MASK`` = ``vocab_size``).
        draft: a token draft (``sample(n) -> (n, L)`` ids), e.g. ``LSTMDraft``, ``NGramDraft``
            or a ``DraftCheckpoint`` of one; it must use the data's tokenizer.
        t0: start time in ``[0, 1)``; ``t0 = 0`` is exactly the cold masked flow; ``"auto"``:
            calibrated in ``setup`` (:func:`ws_fm.calibration.calibrate_t0`).
        sigma: the fraction of the cold path's masks placed over the draft at ``t0``, in
            ``[0, 1]``: each draft token is kept with probability ``1 - sigma (1 - kappa_t0)``
            (1, the default: masked like the cold path at ``t0``; 0: the whole draft kept, so
            the refiner sees every draft token and the ``gated`` sampler decides which to redraw).
        coupling: ``minibatch_ot`` (Hamming distance, default), ``independent``, or
            ``teacher_forced`` (pairs from the sample bank: each real sequence with the draft run
            along it, so the refiner learns the draft's errors), or a
            :class:`~ws_fm.couplings.Coupling`.
        scheduler: ``kappa_t`` of the cold masked path (default linear).
        path: the cold path to warm-start (default: ``MaskedPath`` with ``scheduler``); it is
            wrapped in :class:`~ws_fm.paths.WarmStart` with ``t0``.
        **kwargs: the remaining :class:`DiscreteFlowMatching` arguments.
    """

    def __init__(
        self,
        net: nn.Module,
        draft: nn.Module,
        t0: float | str = 0.8,
        coupling: str | Coupling = "minibatch_ot",
        scheduler: KappaScheduler | None = None,
        path: ProbabilityPath | None = None,
        sigma: float = 1.0,
        **kwargs: Any,
    ) -> None:
        draft = self.check_draft(draft)
        start = self.start_time(t0)
        if not 0.0 <= float(sigma) <= 1.0:
            raise ValueError(
                f"sigma={sigma} must be in [0, 1]: the fraction of the cold path's masks placed "
                "over the draft at t0 (0 keeps the whole draft)."
            )
        vocab = getattr(net, "vocab_size", None)
        cold = (
            path
            if path is not None
            else MaskedPath(vocab, scheduler)
            if isinstance(vocab, int)
            else None
        )
        super().__init__(
            net,
            coupling=coupling,
            scheduler=scheduler,
            path=WarmStart(cold, start, sigma) if cold is not None else None,
            **kwargs,
        )
        self.init_warm_start(draft, t0)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        train = self.train_data()
        if train is not None:
            self.check_draft_against(train, tokenizer_of(self._trainer))

    def check_draft_against(self, train: Tensor, tokenizer: Any = None) -> None:
        """Shape, vocabulary and tokenizer of the draft against the data's, before any bank is
        built from it."""
        super().check_draft_against(train, tokenizer)
        inner = getattr(self.draft, "draft", self.draft)  # DraftCheckpoint wraps the draft
        draft_vocab = getattr(inner, "vocab_size", self.vocab_size)
        if draft_vocab != self.vocab_size:
            raise ValueError(
                f"the draft ({type(inner).__name__}) has vocab_size={draft_vocab} but the refiner "
                f"{self.vocab_size}: train the draft with the refiner's tokenizer."
            )
        draft_fp = getattr(inner, "tokenizer_fingerprint", None)
        if tokenizer is not None and draft_fp and draft_fp != tokenizer.fingerprint:
            raise ValueError(
                f"the draft ({type(inner).__name__}) was trained with another tokenizer "
                f"({draft_fp[:12]}...) than the refiner's data ({tokenizer.fingerprint[:12]}...): "
                "retrain the draft on the same corpus and tokenizer settings."
            )
