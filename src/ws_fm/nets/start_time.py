"""The start time ``t0`` as a backbone input, for a warm refiner trained across ``t0``
(:class:`~ws_fm.refiners.T0ConditionedFlowMatching`): the velocity of the warm path depends on
where the drafts were placed, so one network that serves every ``t0`` must be told which."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["start_time_input"]


def start_time_input(
    embedding: nn.Module | None, t0: Tensor | None, x: Tensor, net: str
) -> list[Tensor]:
    """``[embedding(t0)]`` for a start-conditioned backbone (``embedding`` set), ``[]`` for
    another; a ``t0`` given to the wrong one, or missing, is an error that names the fix."""
    if embedding is None:
        if t0 is not None:
            raise ValueError(
                f"{net} got a start time t0 but was built without start_conditioned=True."
            )
        return []
    if t0 is None:
        raise ValueError(f"{net}(start_conditioned=True) needs the start time t0.")
    return [embedding(t0.expand(x.shape[0]) if t0.ndim == 0 else t0).to(x.dtype)]
