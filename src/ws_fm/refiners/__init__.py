"""Flow-matching refiners (Lightning systems)."""

from .discrete import DiscreteFlowMatching, WarmStartDiscreteFlowMatching
from .distillation import OneStepDistillation
from .fgm import FlowGeneratorMatching
from .flow_matching import FlowMatching
from .reflow import ReFlow
from .t0_conditioned import T0ConditionedFlowMatching
from .warm_reflow import WarmOneStepDistillation, WarmReFlow
from .warm_start import WarmStartFlowMatching

__all__ = [
    "FlowMatching",
    "WarmStartFlowMatching",
    "T0ConditionedFlowMatching",
    "DiscreteFlowMatching",
    "WarmStartDiscreteFlowMatching",
    "ReFlow",
    "OneStepDistillation",
    "FlowGeneratorMatching",
    "WarmReFlow",
    "WarmOneStepDistillation",
]
