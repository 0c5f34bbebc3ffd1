r"""Discrete flow matching over token sequences: cold (masked source) and warm (drafts at ``t0``).

Training draws ``t ~ U[t0, 1]`` and ``x_t`` from the masked mixture path
(:class:`~ws_fm.discrete_paths.MaskedPath`) and minimises the cross-entropy of
``p_theta(x1 | x_t, t)`` on every position::

    L = E_t E_{x_t} [ - sum_i log p_theta(x1[i] | x_t, t) ] / L

Sampling is the mixture-path Euler sampler (:func:`~ws_fm.solvers.discrete_euler`), one network
evaluation per step, so a warm start at ``t0`` with the cold flow's step size needs
``(1 - t0)`` of its NFE.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice
from ..discrete_paths import MaskedPath
from ..paths import ProbabilityPath
from ..solvers import SolveResult, discrete_euler, num_steps
from .flow_matching import FlowMatching
from .warm_start import WarmStartFlowMatching

__all__ = ["DiscreteFlowMatching", "WarmStartDiscreteFlowMatching", "TOKEN_COUPLINGS"]

# nearest_neighbour by L2 means nothing for token ids; minibatch_ot uses the Hamming distance;
# teacher_forced pairs come precomputed from WarmStartDataModule(teacher_forced=True).
TOKEN_COUPLINGS = ("independent", "minibatch_ot", "teacher_forced")


def _datamodule_tokenizer(trainer: Any) -> Any:
    dm = getattr(trainer, "datamodule", None) if trainer is not None else None
    dm = getattr(dm, "data", dm)  # WarmStartDataModule wraps the text DataModule
    return getattr(dm, "tokenizer", None)


class DiscreteFlowMatching(FlowMatching):
    """Cold-start discrete flow matching from the all-``MASK`` sequence.

    Args:
        net: ``net(x, t) -> logits (B, L, V)`` with a ``vocab_size`` attribute ``V``
            (e.g. :class:`~ws_fm.nets.TokenTransformer`); ``MASK`` is id ``V``.
        coupling: ``independent`` (default for the cold flow) or ``minibatch_ot`` (Hamming);
            warm refiners also take ``teacher_forced``.
        sample_steps: default number of Euler steps over ``[t_start, 1]``.
        **kwargs: ``time_sampler``, ``optimizer``, ``lr_scheduler``, ``sample_shape`` as in
            :class:`FlowMatching`.
    """

    def __init__(
        self,
        net: nn.Module,
        coupling: str = "independent",
        sample_steps: int = 100,
        **kwargs: Any,
    ) -> None:
        vocab = getattr(net, "vocab_size", None)
        if not isinstance(vocab, int):
            raise ValueError(
                f"net={type(net).__name__} has no integer vocab_size; use a token backbone such "
                "as ws_fm.nets.TokenTransformer."
            )
        check_choice(coupling, TOKEN_COUPLINGS, "coupling")
        self.mask_id = vocab  # set before FlowMatching.__init__ builds the path
        self.coupling_name = coupling
        # teacher_forced batches arrive paired (and are never re-paired): no in-batch coupling.
        inner = "independent" if coupling == "teacher_forced" else coupling
        super().__init__(net, coupling=inner, sample_steps=sample_steps, **kwargs)

    @property
    def vocab_size(self) -> int:
        return self.mask_id

    def make_path(self) -> ProbabilityPath:
        return MaskedPath(self.mask_id, 0.0)

    def draw_source(self, n: int, like: Tensor | None = None) -> Tensor:
        """The cold source: ``n`` all-``MASK`` sequences."""
        shape = like.shape[1:] if like is not None else self._require_sample_shape()
        device = like.device if like is not None else self.device
        return torch.full((n, *shape), self.mask_id, dtype=torch.long, device=device)

    def loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy of the predicted ``x1`` distribution on every position."""
        return F.cross_entropy(pred.reshape(-1, pred.shape[-1]).float(), target.reshape(-1))

    @torch.no_grad()
    def sample(  # type: ignore[override]
        self,
        n: int,
        solver: str | None = None,
        steps: int | None = None,
        step_size: float | None = None,
        source: Tensor | None = None,
        return_trajectory: bool = False,
        generator: torch.Generator | None = None,
    ) -> SolveResult:
        """``n`` token sequences by the mixture-path Euler sampler, with the counted NFE.

        Args:
            n: number of sequences.
            solver: only ``euler`` (the discrete Euler sampler).
            steps, step_size: budget over ``[t_start, 1]`` (at most one; neither means
                ``sample_steps``).
            source: pre-drawn drafts (warm) to time the draft separately.
            return_trajectory: also return the state after every step.
            generator: random generator of the path and the sampler.
        """
        if solver not in (None, "euler"):
            raise ValueError(f"solver={solver!r}: discrete flows sample with 'euler' only.")
        if steps is not None and step_size is not None:
            raise ValueError("give at most one of steps and step_size.")
        if step_size is not None:
            steps = num_steps(self.path.t_start, step_size)
        steps = steps or self.sample_steps
        source = self.sampling_source(n, source)
        path: MaskedPath = self.path  # type: ignore[assignment]
        x_start = path.start(source, path.draw_noise(source, generator))
        return discrete_euler(
            self, x_start, path.t_start, steps, generator, return_trajectory=return_trajectory
        )

    def setup(self, stage: str) -> None:
        super().setup(stage)
        tok = _datamodule_tokenizer(self._trainer)
        if tok is not None and tok.vocab_size != self.vocab_size:
            raise ValueError(
                f"the data's tokenizer has {tok.vocab_size} tokens but the network's vocab_size "
                f"is {self.vocab_size}: set net vocab_size to {tok.vocab_size}."
            )
        if self.coupling_name == "teacher_forced":
            dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
            if not getattr(dm, "teacher_forced", False) or not hasattr(self, "draft"):
                raise ValueError(
                    "coupling='teacher_forced' needs a warm refiner and "
                    "WarmStartDataModule(teacher_forced=True), which pairs every training "
                    "sequence with the draft run along it."
                )
        train = self._datamodule_train_data()
        if train is not None and (train.dtype != torch.long or int(train.max()) >= self.mask_id):
            raise ValueError(
                f"{type(self).__name__} needs token ids in [0, {self.mask_id}) as data (got "
                f"dtype {train.dtype}, max {train.max().item()}); use ws_fm.data.TextDataModule."
            )


class WarmStartDiscreteFlowMatching(WarmStartFlowMatching, DiscreteFlowMatching):
    """Warm-start discrete flow matching: refine token drafts from ``t0`` to 1.

    Args:
        net: the token backbone (``vocab_size`` attribute; ``MASK`` = ``vocab_size``).
        draft: a token draft (``sample(n) -> (n, L)`` ids), e.g. ``LSTMDraft``, ``NGramDraft``
            or a ``DraftCheckpoint`` of one; it must use the data's tokenizer.
        t0: start time in ``[0, 1)``; ``t0 = 0`` is exactly the cold masked flow.
        coupling: ``minibatch_ot`` (Hamming distance, default), ``independent``, or
            ``teacher_forced`` (pairs from ``WarmStartDataModule(teacher_forced=True)``: each
            real sequence with the draft run along it, so the refiner learns the draft's errors).
        **kwargs: the remaining :class:`DiscreteFlowMatching` arguments.
    """

    def __init__(
        self,
        net: nn.Module,
        draft: nn.Module,
        t0: float = 0.8,
        coupling: str = "minibatch_ot",
        **kwargs: Any,
    ) -> None:
        # sigma (Gaussian noise at t0) has no discrete counterpart: the masked path replaces it.
        super().__init__(net, draft, t0=t0, sigma=0.0, coupling=coupling, **kwargs)

    def make_path(self) -> ProbabilityPath:
        return MaskedPath(self.mask_id, self._path_args.t0)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        inner = getattr(self.draft, "draft", self.draft)  # DraftCheckpoint wraps the draft
        draft_vocab = getattr(inner, "vocab_size", self.vocab_size)
        if draft_vocab != self.vocab_size:
            raise ValueError(
                f"the draft has vocab_size={draft_vocab} but the refiner {self.vocab_size}: "
                "train the draft with the refiner's tokenizer."
            )
        tok = _datamodule_tokenizer(self._trainer)
        draft_fp = getattr(inner, "tokenizer_fingerprint", None)
        if tok is not None and draft_fp and draft_fp != tok.fingerprint:
            raise ValueError(
                f"the draft was trained with another tokenizer ({draft_fp[:12]}...) than the "
                f"refiner's data ({tok.fingerprint[:12]}...): retrain the draft on the same "
                "corpus and tokenizer settings."
            )
