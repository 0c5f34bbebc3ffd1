"""``StepProgressBar``: training progress in optimizer steps out of ``max_steps``.

Lightning's bars count the batches of an epoch ("Epoch 7/-2" when a run is bounded by
``max_steps``).  This bar counts what bounds the run: ``global_step`` out of ``max_steps`` (or
the estimated total), with the logged metrics, rate and time left.  On a terminal it is a rich
bar; when the output is not a terminal (a log file, CI) it prints one plain line every
``log_every`` steps (default: 20 lines over the run) instead of nothing until the end.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar

__all__ = ["StepProgressBar"]


class StepProgressBar(ProgressBar):
    """Progress in steps out of ``max_steps``.

    Args:
        plain: print plain lines instead of a live bar (default: when stdout is not a terminal).
        log_every: steps between plain lines (default: a twentieth of the run).
    """

    def __init__(self, plain: bool | None = None, log_every: int | None = None) -> None:
        super().__init__()
        self.plain, self.log_every = plain, log_every
        self._enabled = True
        self._progress: Any = None
        self._task: Any = None
        self._start = 0.0
        self._first_step = 0
        self.total = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def _total(self, trainer: L.Trainer) -> int:
        if trainer.max_steps and trainer.max_steps > 0:
            return int(trainer.max_steps)
        return int(trainer.estimated_stepping_batches)

    def _metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str:
        items = self.get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in items.items()
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        self.total = self._total(trainer)
        self._start, self._first_step = time.perf_counter(), trainer.global_step
        plain = self.plain if self.plain is not None else not sys.stdout.isatty()
        if plain:
            self.log_every = self.log_every or max(1, self.total // 20)
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]steps"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=self.total, completed=trainer.global_step, metrics=""
        )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        step = trainer.global_step
        if self._progress is not None:
            self._progress.update(
                self._task, completed=step, metrics=self._metrics(trainer, pl_module)
            )
        elif self.log_every and (step % self.log_every == 0 or step == self.total):
            done = step - self._first_step
            secs = time.perf_counter() - self._start
            rate = done / secs if secs > 0 else 0.0
            left = (self.total - step) / rate if rate > 0 else float("nan")
            print(
                f"step {step}/{self.total} ({100 * step / max(1, self.total):.0f}%) "
                f"{rate:.2f} it/s, {left:.0f} s left  {self._metrics(trainer, pl_module)}",
                flush=True,
            )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, err: Any) -> None:
        self.on_train_end(trainer, pl_module)
