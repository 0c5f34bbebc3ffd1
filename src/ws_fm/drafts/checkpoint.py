"""``DraftCheckpoint``: a trained draft loaded from its Lightning checkpoint, for the refiner."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import Tensor, nn

from .module import DraftModule

__all__ = ["DraftCheckpoint", "load_draft"]


def load_draft(checkpoint: str | Path, draft_class: str) -> DraftModule:
    """Load a :class:`DraftModule` subclass (``module.Class``) from a Lightning checkpoint."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(
            f"draft checkpoint {path} does not exist: train the draft first (e.g. `ws-fm fit --config "
            "lightning_configs/digits/draft_vae.yaml`) and pass the path of its .ckpt file."
        )
    module_name, _, cls_name = draft_class.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(
            f"draft_class={draft_class!r} is not an importable class ({err})."
        ) from err
    if not (isinstance(cls, type) and issubclass(cls, DraftModule)):
        raise ValueError(f"draft_class={draft_class!r} is not a ws_fm.drafts.DraftModule subclass.")
    return cls.load_from_checkpoint(path, map_location="cpu", weights_only=False)


class DraftCheckpoint(nn.Module):
    """Wraps a draft loaded from ``checkpoint``; ``sample(n)`` delegates to it.

    The checkpoint is read at construction, so a missing file fails before any training.  Its
    weights are stored in the refiner's own checkpoint as well (as a submodule), so a refiner
    checkpoint samples without the draft checkpoint at hand.

    Args:
        checkpoint: path of the draft's ``.ckpt``.
        draft_class: its class, e.g. ``ws_fm.drafts.VAEDraft``.
    """

    #: The file's location does not change the draft's samples (the bank's fingerprint skips it).
    fingerprint_ignore = ("checkpoint",)

    def __init__(self, checkpoint: str, draft_class: str) -> None:
        super().__init__()
        self.checkpoint, self.draft_class = str(checkpoint), draft_class
        self.draft = load_draft(checkpoint, draft_class).eval().requires_grad_(False)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.draft.sample_shape

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.draft.sample(n, generator=generator)

    def teacher_force(self, x1: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The wrapped token draft run along ``x1`` (see ``TextDraftModule.teacher_force``)."""
        if not hasattr(self.draft, "teacher_force"):
            raise ValueError(
                f"{type(self.draft).__name__} has no teacher_force: teacher-forced pairs need a "
                "token draft such as NGramDraft or LSTMDraft."
            )
        return self.draft.teacher_force(x1, generator=generator)
