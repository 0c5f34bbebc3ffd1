"""Flow-matching refiners (Lightning systems)."""

from .flow_matching import FlowMatching
from .warm_start import WarmStartFlowMatching

__all__ = ["FlowMatching", "WarmStartFlowMatching"]
