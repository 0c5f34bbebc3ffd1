"""Draft generators: cheap models whose samples a warm-start refiner starts from."""

from .base import DraftGenerator
from .checkpoint import DraftCheckpoint, load_draft
from .gan import GANDraft
from .gaussian import GaussianDraft
from .gmm import GaussianMixtureDraft
from .lstm import LSTMDraft
from .module import DraftModule
from .ngram import NGramDraft
from .text_module import TextDraftModule
from .vae import VAEDraft

__all__ = [
    "DraftGenerator",
    "DraftCheckpoint",
    "load_draft",
    "DraftModule",
    "GaussianMixtureDraft",
    "GaussianDraft",
    "VAEDraft",
    "GANDraft",
    "TextDraftModule",
    "NGramDraft",
    "LSTMDraft",
]
