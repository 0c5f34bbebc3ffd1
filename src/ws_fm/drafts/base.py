"""The draft-generator interface shared by toy, image and text drafts."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["DraftGenerator"]


@runtime_checkable
class DraftGenerator(Protocol):
    """Anything that makes ``n`` drafts in one cheap pass: ``sample(n) -> Tensor``.

    Drafts have the data's per-sample shape.  A draft that is fitted to data in closed form
    (no gradient steps) also offers ``fit(data)`` and ``is_fitted``; the warm-start refiner calls
    ``fit`` with the training data during ``setup`` when the draft is not fitted yet.
    """

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...
