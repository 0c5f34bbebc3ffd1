"""Data sets and DataModules."""

from .image_datamodule import ImageDataModule
from .images import load_images, load_labelled_images, read_idx
from .sample_bank import SampleBank, generator_fingerprint
from .structured import CopyChainLanguage
from .structured_datamodule import StructuredTextDataModule
from .tensor_datamodule import TensorDataModule
from .text import load_documents, split_by_position
from .text_datamodule import TextDataModule, to_sequences
from .tokenizer import BPETokenizer
from .toy import TOY_DATASETS, make_toy
from .toy_datamodule import ToyDataModule
from .warm_start_datamodule import WarmStartDataModule, draft_bank

__all__ = [
    "TOY_DATASETS",
    "make_toy",
    "TensorDataModule",
    "ToyDataModule",
    "ImageDataModule",
    "load_images",
    "load_labelled_images",
    "read_idx",
    "SampleBank",
    "generator_fingerprint",
    "WarmStartDataModule",
    "draft_bank",
    "TextDataModule",
    "BPETokenizer",
    "load_documents",
    "split_by_position",
    "to_sequences",
    "CopyChainLanguage",
    "StructuredTextDataModule",
]
