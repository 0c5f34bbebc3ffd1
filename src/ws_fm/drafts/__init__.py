"""Draft generators: cheap models whose samples a warm-start refiner starts from."""

from .base import DraftGenerator
from .gmm import GaussianMixtureDraft

__all__ = ["DraftGenerator", "GaussianMixtureDraft"]
