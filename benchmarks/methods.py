"""The method registry: how each benchmarked method is built from a backbone, a draft and a job.

A method is a name (``cold_fm``, ``ws_fm``, ``cold_dfm``, ``ws_dfm``, the peers ``reflow``,
``distill`` and ``fgm``, and the warm students ``ws_reflow`` and ``ws_distill``), whether it starts from a draft, whether it learns from a teacher (a
cold flow of the same run, trained first), and a builder.  The engine
(:mod:`benchmarks.engine`) trains, scores and times every method the same way; a profile names the
methods it compares.  Register a new one with :func:`register_method`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ws_fm.refiners import (
    DiscreteFlowMatching,
    FlowGeneratorMatching,
    FlowMatching,
    OneStepDistillation,
    ReFlow,
    WarmOneStepDistillation,
    WarmReFlow,
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
    #: trained against a teacher (the profile's cold flow): ``build`` also receives ``teacher``
    #: (a trained cold flow) and ``profile``
    teacher: bool = False
    #: the Euler step counts it is scored on, when not the warm or cold grid (one-step models)
    steps: tuple[int, ...] = ()
    #: where its training pairs come from: ``teacher_pairs`` (a bank of the teacher's pairs) or
    #: ``online`` (none stored)
    pairs: str = ""
    #: taught by the profile's warm refiner of the same draft at the ablation t0 (warm ReFlow and
    #: distillation) instead of a cold flow
    warm_teacher: bool = False

    def grid(self, p: Any) -> tuple[int, ...]:
        """The Euler step counts it is scored on: its own, the warm grid, or the cold grid with
        the reference budget (the reference quality is read off a cold flow's row)."""
        if self.steps:
            return self.steps
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


def _peer(cls: type[FlowMatching]) -> Builder:
    """ReFlow / distillation: trained on the bank of the teacher's pairs (Euler at the
    profile's ``pair_steps``, a warm teacher's at ``warm_pair_steps``), from the teacher's weights, with the profile's optimiser."""

    def build(net: nn.Module, draft: nn.Module | None, job: Any, **kw: Any) -> FlowMatching:
        teacher, p = kw.pop("teacher"), kw.pop("profile")
        return cls(  # type: ignore[call-arg]
            net, teacher, teacher_solver=p.pair_solver, teacher_steps=p.pair_steps_of(job), **kw
        )

    return build


def _fgm(net: nn.Module, draft: nn.Module | None, job: Any, **kw: Any) -> FlowMatching:
    """FGM: Adam with beta1 = 0 at the profile's ``fgm_lr`` and no LR schedule (manual
    optimisation), ``fgm_online_steps`` online-flow batches per generator batch."""
    teacher, p = kw.pop("teacher"), kw.pop("profile")
    kw.pop("optimizer"), kw.pop("lr_scheduler", None)
    lr = p.fgm_lr

    def adam(params: Any) -> Any:
        return torch.optim.Adam(params, lr=lr, betas=(0.0, 0.999))

    return FlowGeneratorMatching(
        net, teacher, online_steps=p.fgm_online_steps, optimizer=adam, **kw
    )


def _register_students(reflow: type[FlowMatching], distill: type[FlowMatching], warm: bool) -> None:
    """ReFlow (sampled at 1-8 steps) and one-step distillation, trained on the bank of a
    teacher's pairs; the warm ones (``ws_``) from a warm teacher's pairs ``(x_t0, x1)``."""
    prefix = "ws_" if warm else ""
    for name, cls, steps in (("reflow", reflow, (1, 2, 4, 8)), ("distill", distill, (1,))):
        register_method(
            Method(
                prefix + name,
                warm=warm,
                build=_peer(cls),
                teacher=True,
                steps=steps,
                pairs="teacher_pairs",
                warm_teacher=warm,
            )
        )


_register_students(ReFlow, OneStepDistillation, warm=False)
register_method(Method("fgm", warm=False, build=_fgm, teacher=True, steps=(1,), pairs="online"))
_register_students(WarmReFlow, WarmOneStepDistillation, warm=True)
