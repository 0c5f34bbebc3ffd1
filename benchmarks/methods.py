"""The method registry: how each benchmarked method is built from a backbone, a draft and a job.

A method is a name (``cold_fm``, ``ws_fm``, ``cold_dfm``, ``ws_dfm``; ``reflow``, ``distill`` and
``fgm`` join with the peers), whether it starts from a draft, and a builder.  The engine
(:mod:`benchmarks.engine`) trains, scores and times every method the same way; a profile names the
methods it compares.  Register a new one with :func:`register_method`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ws_fm.refiners import (
    DiscreteFlowMatching,
    FlowMatching,
    WarmStartDiscreteFlowMatching,
    WarmStartFlowMatching,
)

__all__ = ["Method", "METHODS", "register_method", "get_method"]

#: ``build(net, draft, job, **kwargs)``: the LightningModule of one job (``draft`` None when cold).
Builder = Callable[..., FlowMatching]


@dataclass(frozen=True)
class Method:
    """One benchmarked method: ``warm`` ones start from a draft at ``job.t0``.  (``p`` is a
    :class:`benchmarks.engine.Profile` and ``job`` a :class:`benchmarks.engine.RefinerJob`; the
    engine imports this module, not the other way round.)"""

    name: str
    warm: bool
    build: Builder

    def grid(self, p: Any) -> tuple[int, ...]:
        """The Euler step counts it is scored on: the warm grid, or the cold grid with the
        reference budget (the reference quality is read off a cold flow's row)."""
        if self.warm:
            return tuple(p.warm_grid)
        return tuple(sorted({*p.cold_grid, p.reference_steps}))


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add ``method`` to the registry (a name already taken is refused)."""
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(METHODS)}")
    return METHODS[name]


def _cold(cls: type[FlowMatching]) -> Builder:
    def build(net: nn.Module, draft: nn.Module | None, job: Any, **kw: Any) -> FlowMatching:
        return cls(net, coupling=job.coupling, **kw)

    return build


def _warm(cls: type[FlowMatching]) -> Builder:
    def build(net: nn.Module, draft: nn.Module | None, job: Any, **kw: Any) -> FlowMatching:
        if draft is None:
            raise ValueError(f"{job.method} needs a draft; the job {job.label} names none")
        return cls(net, draft, t0=job.t0, coupling=job.coupling, **kw)  # type: ignore[call-arg]

    return build


register_method(Method("cold_fm", warm=False, build=_cold(FlowMatching)))
register_method(Method("ws_fm", warm=True, build=_warm(WarmStartFlowMatching)))
register_method(Method("cold_dfm", warm=False, build=_cold(DiscreteFlowMatching)))
register_method(Method("ws_dfm", warm=True, build=_warm(WarmStartDiscreteFlowMatching)))
