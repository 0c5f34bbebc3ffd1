import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from ws_fm.couplings import IndependentCoupling, NearestNeighbourCoupling
from ws_fm.data import SampleBank, draft_bank, generator_fingerprint
from ws_fm.data.warm_start_datamodule import bank_fingerprint

REF = torch.zeros(10, 4)  # training data: only its shape and length matter to these drafts


class ShiftDraft(nn.Module):
    """A tiny draft: N(shift, 1) vectors; ``shift`` is its one weight."""

    def __init__(self, shift=0.0, dim=4):
        super().__init__()
        self.register_buffer("shift", torch.tensor(float(shift)))
        self.dim = dim

    def sample(self, n, generator=None):
        return torch.randn(n, self.dim, generator=generator) + self.shift


def bank(path, draft, size, seed=0, coupling=None, on_stale="rebuild", reference=REF, **kw):
    return draft_bank(
        path,
        draft,
        coupling or IndependentCoupling(),
        size,
        reference,
        seed,
        on_stale,
        progress=False,
        **kw,
    )


def test_bank_round_trip_and_reuse(tmp_path):
    d = ShiftDraft(2.0)
    b = bank(tmp_path / "b", d, size=300, seed=1)
    assert len(b) == 300 and b[0]["source"].shape == (4,) and b.columns == ("source",)
    assert abs(float(b.column("source", range(300)).mean()) - 2.0) < 0.2
    mtime = (tmp_path / "b" / "meta.json").stat().st_mtime_ns
    again = bank(tmp_path / "b", d, size=300, seed=1)
    assert (tmp_path / "b" / "meta.json").stat().st_mtime_ns == mtime  # reused, not rebuilt
    torch.testing.assert_close(again.column("source", [5, 7]), b.column("source", [5, 7]))


def test_named_columns_keep_their_shapes_and_dtypes(tmp_path):
    def fill(start, n, rng):
        return {
            "source": torch.randn(n, 1, 3, 3, generator=rng),
            "target": torch.arange(start, start + n).float()[:, None].expand(n, 2),
            "label": torch.arange(start, start + n),
        }

    b = SampleBank.build(tmp_path / "c", fill, 25, "fp", chunk=10, progress=False)
    rows = b.rows([3, 17])
    assert rows["source"].shape == (2, 1, 3, 3) and rows["source"].dtype == torch.float32
    assert rows["label"].tolist() == [3, 17] and rows["label"].dtype == torch.int64
    assert rows["target"].tolist() == [[3.0, 3.0], [17.0, 17.0]]


def test_fingerprint_change_triggers_rebuild_or_error(tmp_path):
    bank(tmp_path / "b", ShiftDraft(0.0), size=100)
    other = ShiftDraft(5.0)  # another draft's weights
    assert generator_fingerprint(other) != generator_fingerprint(ShiftDraft(0.0))
    with pytest.raises(ValueError, match="another generator.*on_stale='rebuild'"):
        bank(tmp_path / "b", other, size=100, on_stale="error")
    with pytest.warns(UserWarning, match="another generator.*rebuilding"):
        rebuilt = bank(tmp_path / "b", other, size=100)
    assert float(rebuilt.column("source", range(100)).mean()) > 4
    # Seed and size are part of the fingerprint too.
    with pytest.warns(UserWarning, match="rebuilding"):
        assert bank(tmp_path / "b", other, size=120).meta["size"] == 120


def test_changed_hyperparameter_rebuilds_the_bank(tmp_path):
    """A setting that changes the samples but no weight (temperature, smoothing, residual
    noise) must change the fingerprint, also when it is set after construction."""
    from ws_fm.drafts import GaussianDraft, LSTMDraft, NGramDraft

    x = torch.randint(0, 50, (100, 16), generator=torch.Generator().manual_seed(0))
    cases = [
        (lambda: LSTMDraft(50, 16), "temperature", 0.7),
        (lambda: NGramDraft(50, 16).fit(x), "add_k", 0.5),
        (lambda: NGramDraft(50, 16).fit(x), "weights", (0.5, 0.3, 0.2)),
        (lambda: GaussianDraft((1, 8, 8)), "residual", False),
    ]
    for make, attr, value in cases:
        torch.manual_seed(0)
        a = make()
        torch.manual_seed(0)
        b = make()
        assert generator_fingerprint(a) == generator_fingerprint(b)
        setattr(b, attr, value)
        assert generator_fingerprint(a) != generator_fingerprint(b), attr
    # Built through the DataModule's path: a changed temperature rebuilds the bank.
    lstm = LSTMDraft(50, 16)
    c = IndependentCoupling()
    first = draft_bank(tmp_path / "t", lstm, c, 20, x, progress=False)
    lstm.temperature = 0.5
    with pytest.warns(UserWarning, match="rebuilding"):
        second = draft_bank(tmp_path / "t", lstm, c, 20, x, progress=False)
    assert first.fingerprint != second.fingerprint


def test_interrupted_build_is_never_used(tmp_path):
    class Crashing(ShiftDraft):
        calls = 0

        def sample(self, n, generator=None):
            Crashing.calls += 1
            if Crashing.calls > 3:
                raise KeyboardInterrupt  # the run is interrupted mid-write
            return super().sample(n, generator)

    with pytest.raises(KeyboardInterrupt):
        bank(tmp_path / "b", Crashing(), size=5000, chunk=100)
    assert not (tmp_path / "b").exists()
    assert not list(tmp_path.glob(".b.tmp-*"))  # temporary files are cleaned up
    # A leftover temporary folder from a killed process is ignored and removed by the next build.
    (tmp_path / ".b.tmp-dead").mkdir()
    bank(tmp_path / "b", ShiftDraft(), size=50)
    assert not (tmp_path / ".b.tmp-dead").exists()


def test_corrupt_bank_is_detected(tmp_path):
    bank(tmp_path / "b", ShiftDraft(), size=50)
    meta = tmp_path / "b" / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "size": 51}))
    with pytest.raises(ValueError, match="corrupt"):
        SampleBank(tmp_path / "b")
    with pytest.raises(ValueError, match="corrupt"):
        bank(tmp_path / "b", ShiftDraft(), size=50, on_stale="error")
    with pytest.warns(UserWarning, match="corrupt.*rebuilding"):
        assert len(bank(tmp_path / "b", ShiftDraft(), size=50)) == 50


def test_bytes_changed_inside_the_arrow_file_are_detected(tmp_path):
    b = bank(tmp_path / "b", ShiftDraft(), size=2000)
    arrow = max((tmp_path / "b" / "bank").glob("*.arrow"), key=lambda f: f.stat().st_size)
    raw = bytearray(arrow.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 4096] = b"\xff" * 4096  # NaN bytes inside a record batch
    arrow.write_bytes(bytes(raw))
    del b
    with pytest.raises(ValueError, match="checksum"):
        SampleBank(tmp_path / "b")


def test_nearest_neighbour_pairs_are_correct(tmp_path):
    reference = torch.tensor([[0.0, 0, 0, 0], [10, 0, 0, 0], [0, 10, 0, 0]])
    b = bank(
        tmp_path / "nn",
        ShiftDraft(0.0),
        64,
        coupling=NearestNeighbourCoupling(),
        reference=reference,
    )
    drafts = b.column("source", range(64))
    expected = torch.cdist(drafts, reference).argmin(1)
    assert torch.equal(b.column("pair_index", range(64)), expected)
    # The coupling is part of the fingerprint: the same draft, other pairs, another bank.
    d = ShiftDraft(0.0)
    assert bank_fingerprint(d, NearestNeighbourCoupling(), 0, 64) != bank_fingerprint(
        d, IndependentCoupling(), 0, 64
    )


_RSS_SCRIPT = r"""
import resource, sys, torch
from ws_fm.data import SampleBank
def fill(start, n, rng):
    return {"source": torch.randn(n, 4, generator=rng)}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
bank = SampleBank.build(sys.argv[1], fill, int(sys.argv[2]), "fp", chunk=4096, progress=False)
total = float(sum(bank.column("source", range(i, min(i + 4096, len(bank)))).sum()
                  for i in range(0, len(bank), 4096)))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_memory_stays_flat_as_the_bank_grows(tmp_path):
    growth = {}
    for n in (20_000, 400_000):  # 20x more drafts: 6 MB of floats in the large one
        out = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, str(tmp_path / f"b{n}"), str(n)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        growth[n] = int(out.stdout.split()[-1])  # KiB
    # Holding 400k rows as Python lists would cost hundreds of MB; streamed Arrow stays flat.
    assert growth[400_000] - growth[20_000] < 60_000, growth


def test_fingerprint_depends_on_values_not_on_storage():
    from ws_fm.drafts import NGramDraft

    x = torch.randint(0, 50, (100, 16), generator=torch.Generator().manual_seed(0))
    fitted = NGramDraft(50, 16).fit(x)  # some count tables are views of larger buffers
    copy = NGramDraft(50, 16)
    copy.load_state_dict(fitted.state_dict())
    assert generator_fingerprint(fitted) == generator_fingerprint(copy)
    other = NGramDraft(50, 16).fit(x.flip(1))
    assert generator_fingerprint(other) != generator_fingerprint(fitted)
