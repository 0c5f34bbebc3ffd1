"""``TextDataModule``: a corpus cut into fixed-length BPE token sequences."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from .._checks import check_positive_int
from ..cache import cache_dir
from .tensor_datamodule import TensorDataModule
from .text import load_documents, split_by_position
from .tokenizer import BPETokenizer

__all__ = ["TextDataModule", "to_sequences"]


def _default_cache() -> Path:
    return cache_dir("text")


def to_sequences(ids: list[int], seq_len: int, split: str = "train") -> Tensor:
    """Non-overlapping ``(N, seq_len)`` chunks of ``ids`` (the remainder is dropped)."""
    n = len(ids) // seq_len
    if n == 0:
        raise ValueError(
            f"the {split} split has {len(ids)} tokens, too few for one sequence of "
            f"seq_len={seq_len}: use a larger corpus or a smaller seq_len."
        )
    return torch.as_tensor(ids[: n * seq_len], dtype=torch.long).reshape(n, seq_len)


class TextDataModule(TensorDataModule):
    """Batches of ``(B, seq_len)`` token ids in ``[0, vocab_size)``.

    The tokenizer is trained on the training split only (see :class:`BPETokenizer`) and cached
    in ``cache_dir`` under a fingerprint of the text and the settings.

    Args:
        source: ``janeausten`` (default), ``fortunes``, a ``*.txt`` file or folder, or
            ``hf:<name>`` (see :mod:`ws_fm.data.text`).
        root: folder of the Debian package's files, when not in the default place.
        seq_len: tokens per sequence.
        vocab_size: BPE vocabulary size requested (the tokenizer may end with fewer ids on a
            small corpus; models must match ``tokenizer.vocab_size``).
        val, test: fractions of every document held out, by position.
        cache_dir: tokenizer cache (default ``~/.cache/ws_fm/text`` or ``$WS_FM_CACHE/text``).
        batch_size: per-process batch size.
        num_workers: DataLoader worker processes.
    """

    def __init__(
        self,
        source: str = "janeausten",
        root: str | None = None,
        seq_len: int = 64,
        vocab_size: int = 4000,
        val: float = 0.05,
        test: float = 0.05,
        cache_dir: str | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers)
        self.source, self.root = source, root
        self.seq_len = check_positive_int(seq_len, "seq_len")
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.val_fraction, self.test_fraction = val, test
        self.cache_dir = Path(cache_dir) if cache_dir else _default_cache()
        self._tokenizer: BPETokenizer | None = None
        self._val: Tensor | None = None
        self.texts: dict[str, str] = {}

    def load(self) -> tuple[Tensor, Tensor]:
        splits = split_by_position(
            load_documents(self.source, self.root), self.val_fraction, self.test_fraction
        )
        self.texts = {"train": splits.train, "val": splits.val, "test": splits.test}
        self._tokenizer = BPETokenizer.load_or_train(splits.train, self.cache_dir, self.vocab_size)
        seqs = {
            name: to_sequences(self._tokenizer.encode(text), self.seq_len, name)
            for name, text in self.texts.items()
        }
        self._val = seqs["val"]
        return seqs["train"], seqs["test"]

    @property
    def tokenizer(self) -> BPETokenizer:
        self.setup()
        assert self._tokenizer is not None
        return self._tokenizer

    def val_data(self) -> Tensor:
        self.setup()
        assert self._val is not None
        return self._val

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_data(), train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_data(), train=False)
