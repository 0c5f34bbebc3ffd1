"""Data sets and DataModules."""

from .toy import TOY_DATASETS, make_toy
from .toy_datamodule import ToyDataModule

__all__ = ["TOY_DATASETS", "make_toy", "ToyDataModule"]
