"""Text corpora as documents, and train / validation / test splits by position.

Sources (all offline except ``hf:``):

- ``janeausten`` (default): Jane Austen's six novels from the Debian package
  ``r-cran-janeaustenr``, read from its R lazy-load database with PyPI's ``rdata`` (R is not
  needed).
- ``fortunes``: the Debian ``fortunes`` / ``fortunes-min`` files (``%``-separated quotes); each
  file is one document.
- a local file or folder: ``*.txt`` files through ``datasets``' ``text`` loader, one document
  per file.
- ``hf:<name>``: a hub data set's ``text`` column (online users).

Splits are cut *by position inside each document*: the first ``1 - val - test`` of every
document trains, the next part validates, the end is the test text, so test text is unseen
(no random lines from the same paragraph on both sides).
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "JANEAUSTEN_ROOT",
    "FORTUNES_ROOT",
    "TEXT_SOURCES",
    "load_documents",
    "normalise_whitespace",
    "split_by_position",
    "TextSplits",
]

JANEAUSTEN_ROOT = Path("/usr/lib/R/site-library/janeaustenr/data")
FORTUNES_ROOT = Path("/usr/share/games/fortunes")
TEXT_SOURCES = ("janeausten", "fortunes", "<path>", "hf:<name>")
JANEAUSTEN_NOVELS = (
    "sensesensibility",
    "prideprejudice",
    "mansfieldpark",
    "emma",
    "northangerabbey",
    "persuasion",
)


@dataclass(frozen=True)
class TextSplits:
    train: str
    val: str
    test: str


def _read_r_object(rdb: bytes, offset: int, length: int) -> object:
    import rdata

    blob = zlib.decompress(rdb[offset + 4 : offset + length])  # 4-byte length, then zlib
    return rdata.conversion.convert(rdata.parser.parse_data(blob))


def _janeausten(root: Path) -> list[str]:
    import warnings

    import rdata

    rdx, rdb = root / "Rdata.rdx", root / "Rdata.rdb"
    if not (rdx.is_file() and rdb.is_file()):
        raise FileNotFoundError(
            f"Jane Austen's novels not found in {root}. Install them with "
            "`sudo apt-get install r-cran-janeaustenr` (`make install` does this where apt-get "
            "is available), or pass root=<folder with Rdata.rdx and Rdata.rdb>."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rdata warns that the lazy-load blobs have no header
        index = rdata.conversion.convert(rdata.parser.parse_data(gzip.decompress(rdx.read_bytes())))
        data = rdb.read_bytes()
        docs = []
        for name in JANEAUSTEN_NOVELS:
            offset, length = (int(v) for v in index["variables"][name])
            lines = _read_r_object(data, offset, length)
            docs.append("\n".join(str(line) for line in lines))  # type: ignore[attr-defined]
    return docs


def _fortunes(root: Path) -> list[str]:
    files = (
        sorted(
            p for p in root.iterdir() if p.is_file() and not p.suffix and not p.name.endswith(".u8")
        )
        if root.is_dir()
        else []
    )
    if not files:
        raise FileNotFoundError(
            f"no fortune files in {root}. Install them with `sudo apt-get install fortunes-min` "
            "(or `fortunes`), or pass root=<folder of %-separated files>."
        )
    docs = []
    for path in files:
        quotes = [q.strip() for q in path.read_text(errors="replace").split("\n%\n")]
        docs.append("\n\n".join(q for q in quotes if q))
    return docs


def _local(path: Path) -> list[str]:
    from datasets import load_dataset

    files = sorted(str(p) for p in path.rglob("*.txt")) if path.is_dir() else [str(path)]
    if not files:
        raise FileNotFoundError(f"no *.txt files under {path}.")
    ds = load_dataset("text", data_files=files, sample_by="document", split="train")
    return [str(t) for t in ds["text"]]


def _hub(name: str) -> list[str]:
    from datasets import load_dataset

    ds = load_dataset(name, split="train")
    return ["\n".join(str(t) for t in ds["text"])]


def normalise_whitespace(doc: str) -> str:
    """One paragraph a line: hard line wraps inside paragraphs become single spaces."""
    paragraphs = re.split(r"\n\s*\n", doc)
    return "\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def load_documents(source: str = "janeausten", root: str | Path | None = None) -> list[str]:
    """The documents of ``source`` (see the module docstring), in a fixed order, one paragraph
    a line."""
    if source == "janeausten":
        docs = _janeausten(Path(root) if root is not None else JANEAUSTEN_ROOT)
    elif source == "fortunes":
        docs = _fortunes(Path(root) if root is not None else FORTUNES_ROOT)
    elif source.startswith("hf:"):
        docs = _hub(source[3:])
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(
                f"text source {source!r} is neither one of janeausten, fortunes, hf:<name> nor "
                "an existing file or folder of *.txt files."
            )
        docs = _local(path)
    return [normalise_whitespace(d) for d in docs]


def _cut(doc: str, frac: float) -> int:
    """A whitespace position near ``frac`` of ``doc`` (so no word is split)."""
    i = int(len(doc) * frac)
    j = doc.find(" ", i)
    return len(doc) if j < 0 else j


def split_by_position(docs: Sequence[str], val: float = 0.05, test: float = 0.05) -> TextSplits:
    """Train / validation / test text: the start, middle and end part of every document."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val={val} and test={test} must be fractions with val + test < 1.")
    parts: tuple[list[str], list[str], list[str]] = ([], [], [])
    for doc in docs:
        a, b = _cut(doc, 1 - val - test), _cut(doc, 1 - test)
        for out, piece in zip(parts, (doc[:a], doc[a:b], doc[b:])):
            if piece.strip():
                out.append(piece.strip())
    return TextSplits(*("\n\n".join(p) for p in parts))
