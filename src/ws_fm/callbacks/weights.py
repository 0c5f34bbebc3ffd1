"""Measure the weights that are saved: the averaged (EMA) weights wherever a checkpoint holds them.

Lightning's ``WeightAveraging`` (``EMAWeightAveraging``) swaps the averaged weights into the module
in ``on_validation_epoch_start`` and back in ``on_validation_epoch_end``, and copies them in for
good in ``on_train_end``; a checkpoint holds the averaged weights.  Callbacks run in list order,
so a metric callback listed *after* it would see the raw weights in ``on_validation_epoch_end``
(the swap back has already happened) and one listed *before* it would see the raw weights in
``on_train_end``.  :func:`saved_weights` puts the averaged weights in for the duration of a
measurement in either case, through the averaging callback's own public hooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
from lightning.pytorch.callbacks import Callback, WeightAveraging

__all__ = ["saved_weights", "averaging_callback"]


def averaging_callback(trainer: L.Trainer) -> WeightAveraging | None:
    """The trainer's weight-averaging callback, if any."""
    found = [c for c in trainer.callbacks if isinstance(c, WeightAveraging)]  # type: ignore[attr-defined]
    return found[0] if found else None


def _runs_after(trainer: L.Trainer, first: Callback, second: Callback) -> bool:
    callbacks = list(trainer.callbacks)  # type: ignore[attr-defined]
    return callbacks.index(second) > callbacks.index(first)


@contextmanager
def saved_weights(
    trainer: L.Trainer, pl_module: L.LightningModule, me: Callback, hook: str
) -> Iterator[None]:
    """Within the block, ``pl_module`` holds the weights a checkpoint would save.

    ``hook`` is the calling hook: ``"on_validation_epoch_end"`` or ``"on_train_end"``.
    """
    avg = averaging_callback(trainer)
    if avg is None or me not in trainer.callbacks:  # type: ignore[attr-defined]
        yield
        return
    if hook == "on_validation_epoch_end" and _runs_after(trainer, avg, me):
        # the averaging callback has already swapped the raw weights back: swap in again
        avg.on_validation_epoch_start(trainer, pl_module)
        try:
            yield
        finally:
            avg.on_validation_epoch_end(trainer, pl_module)
    elif hook == "on_train_end" and _runs_after(trainer, me, avg):
        avg.on_train_end(trainer, pl_module)  # copies the average in (idempotent; it runs again)
        yield
    else:
        yield
