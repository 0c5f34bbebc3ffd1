"""``DraftCheckpoint``: a trained draft loaded from its Lightning checkpoint, for the refiner."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import Tensor, nn

from ..checkpoints import CLASS_KEY, outside_cli_instantiation
from .module import DraftModule

__all__ = ["DraftCheckpoint", "load_draft"]


def load_draft(checkpoint: str | Path, draft_class: str | None = None) -> DraftModule:
    """Load a draft from its Lightning checkpoint.

    The class is read from the checkpoint (drafts record it); ``draft_class`` (``module.Class``)
    is needed only for checkpoints that do not, and when given it must agree with the file.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(
            f"draft checkpoint {path} does not exist: train the draft first (e.g. `ws-fm fit --config "
            "lightning_configs/digits/draft_vae.yaml`) and pass the path of its .ckpt file."
        )
    recorded = torch.load(path, map_location="cpu", weights_only=False, mmap=True).get(CLASS_KEY)
    if draft_class is None and recorded is None:
        raise ValueError(
            f"draft checkpoint {path} does not record its class: pass draft_class (e.g. "
            "ws_fm.drafts.VAEDraft)."
        )
    if draft_class is not None and recorded is not None:
        if draft_class.rpartition(".")[2] != recorded.rpartition(".")[2]:
            raise ValueError(
                f"draft checkpoint {path} holds a {recorded.rpartition('.')[2]}, but draft_class "
                f"asks for {draft_class.rpartition('.')[2]}: drop draft_class (the checkpoint "
                "names its class) or point checkpoint at the right file."
            )
    name = recorded or draft_class
    assert name is not None
    module_name, _, cls_name = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"draft class {name!r} is not an importable class ({err}).") from err
    if not (isinstance(cls, type) and issubclass(cls, DraftModule)):
        raise ValueError(f"draft class {name!r} is not a ws_fm.drafts.DraftModule subclass.")
    return outside_cli_instantiation(cls.load_from_checkpoint, path, map_location="cpu")


class DraftCheckpoint(nn.Module):
    """Wraps a draft loaded from ``checkpoint``; ``sample(n)`` delegates to it.

    The checkpoint is read at construction, so a missing file fails before any training.  Its
    weights are stored in the refiner's own checkpoint as well (as a submodule), so a refiner
    checkpoint samples without the draft checkpoint at hand.

    Args:
        checkpoint: path of the draft's ``.ckpt``.
        draft_class: its class, e.g. ``ws_fm.drafts.VAEDraft``; optional, as the checkpoint
            records it (a mismatch is refused, naming both).
    """

    #: The file's location does not change the draft's samples (the bank's fingerprint skips it).
    fingerprint_ignore = ("checkpoint",)

    def __init__(self, checkpoint: str, draft_class: str | None = None) -> None:
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
