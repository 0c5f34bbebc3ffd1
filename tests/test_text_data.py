import pytest
import torch
from helpers import SMALL_CORPUS

from ws_fm.data import BPETokenizer, TextDataModule, load_documents, split_by_position
from ws_fm.data.text import JANEAUSTEN_ROOT, normalise_whitespace

needs_austen = pytest.mark.skipif(
    not (JANEAUSTEN_ROOT / "Rdata.rdb").is_file(),
    reason="r-cran-janeaustenr is not installed (make install installs it with apt-get)",
)

CORPUS = SMALL_CORPUS


def test_split_is_by_position_and_disjoint():
    docs = [f"doc{d} " + " ".join(f"w{d}_{i}" for i in range(1000)) for d in range(3)]
    s = split_by_position(docs, val=0.1, test=0.1)
    for d in range(3):
        assert f"w{d}_0 " in s.train and f"w{d}_999" in s.test
        assert f"w{d}_950" not in s.train and f"w{d}_850" in s.val
    train_words, test_words = set(s.train.split()), set(s.test.split())
    assert not train_words & test_words
    with pytest.raises(ValueError, match="val \\+ test < 1"):
        split_by_position(docs, val=0.6, test=0.5)


def test_whitespace_normalised_to_one_paragraph_a_line():
    assert normalise_whitespace("a  b\nc\n\n\nd\te") == "a b c\nd e"


def test_tokenizer_round_trips_held_out_text_and_is_reused_by_fingerprint(tmp_path):
    train, held_out = CORPUS[:30_000], "Anne wrote a letter about the garden; Elinor was wise!"
    tok = BPETokenizer.load_or_train(train, tmp_path, vocab_size=400)
    assert tok.decode(tok.encode(held_out)) == held_out
    assert 256 < tok.vocab_size <= 400 and tok.mask_id == tok.vocab_size
    files = list(tmp_path.glob("bpe-*.json"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    again = BPETokenizer.load_or_train(train, tmp_path, vocab_size=400)
    assert again.fingerprint == tok.fingerprint and files[0].stat().st_mtime_ns == mtime
    other = BPETokenizer.load_or_train(train, tmp_path, vocab_size=350)
    assert other.fingerprint != tok.fingerprint and len(list(tmp_path.glob("bpe-*.json"))) == 2
    files[0].write_text("{ corrupt")  # a corrupt cache file is replaced, not used
    assert BPETokenizer.load_or_train(train, tmp_path, 400).encode(held_out) == tok.encode(held_out)


def test_mask_is_dropped_or_written_as_a_placeholder(tmp_path):
    tok = BPETokenizer.load_or_train(CORPUS[:30_000], tmp_path, vocab_size=400)
    a, b = tok.encode("Anne wrote"), tok.encode(" a letter")
    ids = [*a, tok.mask_id, tok.mask_id, *b]
    assert tok.decode(ids) == "Anne wrote a letter"
    assert tok.decode(ids, mask_text="[MASK]") == "Anne wrote [MASK] [MASK] a letter"
    assert tok.decode([tok.mask_id, *a], mask_text="[MASK]") == "[MASK] Anne wrote"
    assert tok.decode_batch([a, [tok.mask_id]], mask_text="<m>") == ["Anne wrote", "<m>"]


def test_local_text_datamodule_sequences(tmp_path):
    (tmp_path / "a.txt").write_text(CORPUS)
    dm = TextDataModule(str(tmp_path / "a.txt"), seq_len=16, vocab_size=300, cache_dir=tmp_path)
    train, test, val = dm.train_data(), dm.test_data(), dm.val_data()
    assert train.dtype == torch.long and train.shape[1] == 16 and len(test) and len(val)
    assert int(train.max()) < dm.tokenizer.vocab_size
    assert dm.tokenizer.decode(test[0].tolist()) in dm.texts["test"]


def test_corpus_too_small_or_missing_fails_clearly(tmp_path):
    (tmp_path / "tiny.txt").write_text("Too short a text. " * 3)
    dm = TextDataModule(str(tmp_path / "tiny.txt"), seq_len=64, vocab_size=300, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="too few for one sequence of seq_len=64"):
        dm.setup()
    with pytest.raises(FileNotFoundError, match="neither one of janeausten"):
        load_documents(str(tmp_path / "nope.txt"))
    with pytest.raises(FileNotFoundError, match="apt-get install r-cran-janeaustenr"):
        load_documents("janeausten", root=tmp_path)


@needs_austen
def test_jane_austen_six_novels_from_the_debian_package():
    docs = load_documents("janeausten")
    assert len(docs) == 6 and all(len(d) > 400_000 for d in docs)
    assert docs[1].startswith("PRIDE AND PREJUDICE") and "Elizabeth Bennet" in docs[1]
