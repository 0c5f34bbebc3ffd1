"""ws_fm: Warm-Start Flow Matching and the fast-sampling methods it competes with.

The flow mathematics (:mod:`ws_fm.paths`, :mod:`ws_fm.couplings`, :mod:`ws_fm.solvers`) is
free of Lightning; :mod:`ws_fm.refiners` wires it into thin LightningModules.
"""

from .calibration import T0Calibration, calibrate_refined_t0, calibrate_t0
from .couplings import Coupling, get_coupling, resolve_coupling
from .paths import AffinePath, ColdStartPath, MaskedPath, PathSample, WarmStart, WarmStartPath
from .solvers import NFECounter, SolveResult, solve

__version__ = "0.1.0"

__all__ = [
    "AffinePath",
    "MaskedPath",
    "WarmStart",
    "Coupling",
    "resolve_coupling",
    "ColdStartPath",
    "WarmStartPath",
    "PathSample",
    "get_coupling",
    "solve",
    "NFECounter",
    "SolveResult",
    "calibrate_t0",
    "calibrate_refined_t0",
    "T0Calibration",
    "load",
    "__version__",
]


def __getattr__(name: str):  # lazy: ``import ws_fm`` stays free of Lightning
    if name == "load":
        from .checkpoints import load

        return load
    raise AttributeError(f"module 'ws_fm' has no attribute {name!r}")
