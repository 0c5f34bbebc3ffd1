"""``BPETokenizer``: a byte-level BPE tokenizer (``tokenizers``) trained on the training split.

Byte-level BPE round-trips any text exactly.  Token ids are ``0 .. vocab_size - 1``; the flow
models add one more id, ``MASK = vocab_size``, which the tokenizer never produces and
:meth:`BPETokenizer.decode` drops (or writes as a placeholder such as ``[MASK]``).

The trained tokenizer is saved as ``<cache_dir>/bpe-<fingerprint>.json``, where the fingerprint
is a SHA-256 of the training text and the settings, so the same corpus and settings reuse it
(written to a temporary file, then renamed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from .._checks import check_positive_int
from .._files import atomic_write

__all__ = ["BPETokenizer", "tokenizer_fingerprint"]

_FORMAT = "bytelevel-bpe-v1"


def tokenizer_fingerprint(train_text: str, vocab_size: int, min_frequency: int) -> str:
    h = hashlib.sha256(f"{_FORMAT}|{vocab_size}|{min_frequency}|".encode())
    h.update(train_text.encode())
    return h.hexdigest()


class BPETokenizer:
    """A trained byte-level BPE tokenizer with its fingerprint.

    Build it with :meth:`train` or :meth:`load_or_train`; ``vocab_size`` is the number of ids it
    produces (at most the requested size; small corpora give fewer merges).
    """

    def __init__(self, tokenizer: object, fingerprint: str) -> None:
        self.tokenizer = tokenizer
        self.fingerprint = fingerprint
        self.vocab_size: int = tokenizer.get_vocab_size()  # type: ignore[attr-defined]

    @property
    def mask_id(self) -> int:
        """The id the flow models use for ``MASK`` (one past the tokenizer's ids)."""
        return self.vocab_size

    @classmethod
    def train(cls, train_text: str, vocab_size: int = 4000, min_frequency: int = 2) -> BPETokenizer:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        check_positive_int(vocab_size, "vocab_size")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(_chunks(train_text), trainer=trainer)
        return cls(tok, tokenizer_fingerprint(train_text, vocab_size, min_frequency))

    @classmethod
    def load_or_train(
        cls,
        train_text: str,
        cache_dir: str | Path,
        vocab_size: int = 4000,
        min_frequency: int = 2,
    ) -> BPETokenizer:
        """The cached tokenizer for this text and these settings, trained and saved if absent
        or unreadable."""
        from tokenizers import Tokenizer

        fp = tokenizer_fingerprint(train_text, vocab_size, min_frequency)
        path = Path(cache_dir) / f"bpe-{fp[:20]}.json"
        if path.is_file():
            try:
                return cls(Tokenizer.from_file(str(path)), fp)
            except Exception:  # a corrupt file is replaced below
                pass
        tok = cls.train(train_text, vocab_size, min_frequency)
        tok.save(path)
        return tok

    def save(self, path: str | Path) -> Path:
        return atomic_write(path, self.tokenizer.save)  # type: ignore[attr-defined]

    def to_json(self) -> dict[str, str]:
        """The tokenizer as plain strings (what a refiner checkpoint stores to decode samples)."""
        return {"tokenizer": self.tokenizer.to_str(), "fingerprint": self.fingerprint}  # type: ignore[attr-defined]

    @classmethod
    def from_json(cls, data: dict[str, str]) -> BPETokenizer:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_str(data["tokenizer"]), data["fingerprint"])

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text).ids)  # type: ignore[attr-defined]

    def decode(self, ids: Iterable[int], mask_text: str | None = None) -> str:
        """The text of ``ids``.  ``MASK`` (and any id outside the vocabulary) is dropped, or
        written as ``mask_text`` when given (e.g. ``"[MASK]"`` for an encoder that reads
        masked text): the runs between masks are decoded apart, pieces joined by spaces."""
        ids = [int(i) for i in ids]
        if mask_text is None:
            keep = [i for i in ids if 0 <= i < self.vocab_size]
            return str(self.tokenizer.decode(keep))  # type: ignore[attr-defined]
        pieces: list[str] = []
        run: list[int] = []
        for i in [*ids, -1]:  # -1: a sentinel that closes the last run
            if 0 <= i < self.vocab_size:
                run.append(i)
                continue
            if run:
                pieces.append(str(self.tokenizer.decode(run)).strip())  # type: ignore[attr-defined]
                run = []
            pieces.append(mask_text)
        return " ".join(p for p in pieces[:-1] if p)

    def decode_batch(
        self, batch: Sequence[Iterable[int]], mask_text: str | None = None
    ) -> list[str]:
        return [self.decode(ids, mask_text) for ids in batch]


def _chunks(text: str, size: int = 1 << 16) -> Iterable[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]
