"""Callbacks: FID during training, speed-up (NFE saved, wall-clock), sample grids and texts,
exact validity of structured text, progress in steps, final checkpoints."""

from .fid import FIDCallback
from .final_checkpoint import FinalCheckpoint
from .progress import StepProgressBar
from .sample_grid import SampleGridCallback
from .sample_text import SampleTextCallback
from .speedup import SpeedupCallback
from .validity import ValidityCallback

__all__ = [
    "FIDCallback",
    "FinalCheckpoint",
    "SpeedupCallback",
    "SampleGridCallback",
    "SampleTextCallback",
    "StepProgressBar",
    "ValidityCallback",
]
