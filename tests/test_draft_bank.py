import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from ws_fm.data import DraftBank
from ws_fm.data.draft_bank import draft_fingerprint


class ShiftDraft(nn.Module):
    """A tiny draft: N(shift, 1) vectors; ``shift`` is its one weight."""

    def __init__(self, shift=0.0, dim=4):
        super().__init__()
        self.register_buffer("shift", torch.tensor(float(shift)))
        self.dim = dim

    def sample(self, n, generator=None):
        return torch.randn(n, self.dim, generator=generator) + self.shift


def test_bank_round_trip_and_reuse(tmp_path):
    d = ShiftDraft(2.0)
    bank = DraftBank.get(tmp_path / "b", d, size=300, seed=1, progress=False)
    assert len(bank) == 300 and bank[0].shape == (4,)
    assert abs(float(bank.drafts(range(300)).mean()) - 2.0) < 0.2
    mtime = (tmp_path / "b" / "meta.json").stat().st_mtime_ns
    again = DraftBank.get(tmp_path / "b", d, size=300, seed=1, progress=False)
    assert (tmp_path / "b" / "meta.json").stat().st_mtime_ns == mtime  # reused, not rebuilt
    torch.testing.assert_close(again.drafts([5, 7]), bank.drafts([5, 7]))


def test_fingerprint_change_triggers_rebuild_or_error(tmp_path):
    DraftBank.get(tmp_path / "b", ShiftDraft(0.0), size=100, progress=False)
    other = ShiftDraft(5.0)  # another draft's weights
    assert draft_fingerprint(other, 0, 100, False) != draft_fingerprint(
        ShiftDraft(0.0), 0, 100, False
    )
    with pytest.raises(ValueError, match="built from another draft.*on_stale='rebuild'"):
        DraftBank.get(tmp_path / "b", other, size=100, on_stale="error", progress=False)
    rebuilt = DraftBank.get(tmp_path / "b", other, size=100, progress=False)
    assert float(rebuilt.drafts(range(100)).mean()) > 4
    # Seed and size are part of the fingerprint too.
    assert DraftBank.get(tmp_path / "b", other, size=120, progress=False).meta["size"] == 120


def test_interrupted_build_is_never_used(tmp_path):
    class Crashing(ShiftDraft):
        calls = 0

        def sample(self, n, generator=None):
            Crashing.calls += 1
            if Crashing.calls > 3:
                raise KeyboardInterrupt  # the run is interrupted mid-write
            return super().sample(n, generator)

    with pytest.raises(KeyboardInterrupt):
        DraftBank.build(tmp_path / "b", Crashing(), size=5000, chunk=100, progress=False)
    assert not (tmp_path / "b").exists()
    assert not list(tmp_path.glob(".b.tmp-*"))  # temporary files are cleaned up
    # A leftover temporary folder from a killed process is ignored and removed by the next build.
    (tmp_path / ".b.tmp-dead").mkdir()
    DraftBank.build(tmp_path / "b", ShiftDraft(), size=50, progress=False)
    assert not (tmp_path / ".b.tmp-dead").exists()


def test_corrupt_bank_is_detected(tmp_path):
    DraftBank.get(tmp_path / "b", ShiftDraft(), size=50, progress=False)
    meta = tmp_path / "b" / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "size": 51}))
    with pytest.raises(ValueError, match="corrupt"):
        DraftBank(tmp_path / "b")
    with pytest.raises(ValueError, match="corrupt"):
        DraftBank.get(tmp_path / "b", ShiftDraft(), size=50, on_stale="error", progress=False)
    assert len(DraftBank.get(tmp_path / "b", ShiftDraft(), size=50, progress=False)) == 50


def test_nearest_neighbour_pairs_are_correct(tmp_path):
    reference = torch.tensor([[0.0, 0, 0, 0], [10, 0, 0, 0], [0, 10, 0, 0]])
    bank = DraftBank.build(
        tmp_path / "nn", ShiftDraft(0.0), size=64, reference=reference, progress=False
    )
    drafts = bank.drafts(range(64))
    expected = torch.cdist(drafts, reference).argmin(1)
    assert torch.equal(bank.nn_index(range(64)), expected)


_RSS_SCRIPT = r"""
import resource, sys, torch
from torch import nn
from ws_fm.data import DraftBank
class D(nn.Module):
    def sample(self, n, generator=None):
        return torch.randn(n, 4, generator=generator)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
bank = DraftBank.build(sys.argv[1], D(), size=int(sys.argv[2]), chunk=4096, progress=False)
total = float(sum(bank.drafts(range(i, min(i + 4096, len(bank)))).sum() for i in range(0, len(bank), 4096)))
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
    from ws_fm.data.draft_bank import draft_fingerprint
    from ws_fm.drafts import NGramDraft

    x = torch.randint(0, 50, (100, 16), generator=torch.Generator().manual_seed(0))
    fitted = NGramDraft(50, 16).fit(x)  # some count tables are views of larger buffers
    copy = NGramDraft(50, 16)
    copy.load_state_dict(fitted.state_dict())
    assert draft_fingerprint(fitted, 0, 10, False) == draft_fingerprint(copy, 0, 10, False)
    other = NGramDraft(50, 16).fit(x.flip(1))
    assert draft_fingerprint(other, 0, 10, False) != draft_fingerprint(fitted, 0, 10, False)
