"""A user's own coupling and time sampler, given to the CLI by ``class_path`` (test_cli.py).

Each leaves a marker file when it is used, so the test can see that the CLI built and used them.
"""

from pathlib import Path

import lightning as L
import torch

from ws_fm.couplings import Coupling
from ws_fm.time_sampling import TimeSampler


class ReversedCoupling(Coupling):
    """Pairs source ``i`` with data point ``B - 1 - i``."""

    name = "reversed"

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self, source, x1, cond=None):
        Path(self.marker).touch()
        return source, x1.flip(0), cond


class FixedTime(TimeSampler):
    """Every training time at ``t_start + (1 - t_start) * u`` for one ``u``."""

    def __init__(self, u: float, marker: str) -> None:
        self.u, self.marker = u, marker

    def draw_u(self, n, device):
        Path(self.marker).write_text(str(self.u))
        return torch.full((n,), self.u, device=device)


class DieAtStep(L.Callback):
    """Kills the process (no cleanup, like SIGKILL) when training reaches ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            import os

            os._exit(3)
