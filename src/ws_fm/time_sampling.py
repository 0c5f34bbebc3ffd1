r"""Training-time samplers on ``[t_start, 1]``: ``t = t_start + (1 - t_start) * u``.

- ``uniform``: ``u ~ U(0, 1)`` (the default).
- ``logit_normal``: ``u = sigmoid(m + s * z)``, ``z ~ N(0, 1)`` (Esser et al. 2024), which puts
  more weight on the middle of the interval.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_choice

__all__ = ["TIME_SAMPLERS", "sample_time"]

TIME_SAMPLERS = ("uniform", "logit_normal")


def sample_time(
    name: str,
    n: int,
    t_start: float = 0.0,
    device: torch.device | str | None = None,
    loc: float = 0.0,
    scale: float = 1.0,
) -> Tensor:
    """``n`` training times in ``[t_start, 1]`` from the named sampler."""
    check_choice(name, TIME_SAMPLERS, "time_sampler")
    if name == "uniform":
        u = torch.rand(n, device=device)
    else:
        u = torch.sigmoid(loc + scale * torch.randn(n, device=device))
    return t_start + (1.0 - t_start) * u
