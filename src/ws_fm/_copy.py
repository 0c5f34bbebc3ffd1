"""Deep copies of LightningModules that share their optimizer / scheduler factories."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

__all__ = ["SharesFactoriesOnCopy"]


class SharesFactoriesOnCopy:
    """Mixin: ``copy.deepcopy(module)`` shares the callables named in ``shared_on_copy``.

    Why: ``EMAWeightAveraging`` deep-copies the module in ``setup``. The optimizer factories that
    LightningCLI builds are jsonargparse partials that reference its instantiator, which can hold
    a ``_thread.lock`` (seen on rank 0 under DDP), so copying them fails. Factories are stateless
    recipes; the averaged copy never builds an optimizer, so sharing them is safe.
    """

    shared_on_copy: ClassVar[tuple[str, ...]] = ("optimizer_factory", "lr_scheduler_factory")

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        for name in self.shared_on_copy:
            value = self.__dict__.get(name)
            if value is not None:
                memo[id(value)] = value
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))  # type: ignore[attr-defined]
        return new
