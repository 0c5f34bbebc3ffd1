"""``StructuredTextDataModule``: sentences of :class:`~ws_fm.data.structured.CopyChainLanguage`."""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_positive_int
from .structured import CopyChainLanguage
from .tensor_datamodule import TensorDataModule

__all__ = ["StructuredTextDataModule"]


class StructuredTextDataModule(TensorDataModule):
    """Batches of ``(B, 2 * half_len)`` token ids, every one a valid sentence of the language.

    The splits are drawn from ``data_seed`` (train, then validation, then test), so every process
    of a DDP run holds the same data; ``language`` checks validity exactly
    (:meth:`CopyChainLanguage.scores`).

    Args:
        vocab_size, half_len, branching, language_seed: the language
            (:class:`CopyChainLanguage`).
        n_train, n_val, n_test: sentences per split.
        data_seed: seed of the sentences.
        batch_size: per-process batch size.
        num_workers: DataLoader worker processes.
    """

    def __init__(
        self,
        vocab_size: int = 16,
        half_len: int = 12,
        branching: int = 3,
        language_seed: int = 0,
        n_train: int = 20_000,
        n_val: int = 1_000,
        n_test: int = 2_000,
        data_seed: int = 0,
        batch_size: int = 128,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.language = CopyChainLanguage(vocab_size, half_len, branching, language_seed)
        self.n_train = check_positive_int(n_train, "n_train")
        self.n_val = check_positive_int(n_val, "n_val")
        self.n_test = check_positive_int(n_test, "n_test")
        self.data_seed = int(data_seed)
        self._val: Tensor | None = None

    @property
    def seq_len(self) -> int:
        return self.language.seq_len

    @property
    def vocab_size(self) -> int:
        return self.language.vocab_size

    def load(self) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(self.data_seed)
        train = self.language.generate(self.n_train, g)
        self._val = self.language.generate(self.n_val, g)
        return train, self.language.generate(self.n_test, g)

    def val_data(self) -> Tensor:
        self.setup()
        assert self._val is not None
        return self._val

    def val_dataloader(self):  # type: ignore[no-untyped-def]
        return self._loader(self.val_data(), train=False)
