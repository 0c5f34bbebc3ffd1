import math

import pytest
from helpers import quick_trainer
from PIL import Image

from ws_fm.callbacks import SampleGridCallback, SpeedupCallback
from ws_fm.data import ImageDataModule
from ws_fm.drafts import GaussianDraft
from ws_fm.nets import UNet
from ws_fm.refiners import FlowMatching, WarmStartFlowMatching


@pytest.mark.parametrize("t0,steps", [(0.75, 4), (0.8, 3), (0.5, 2)])
def test_speedup_callback_counts_nfe_at_equal_step_size(t0, steps):
    draft = GaussianDraft((1, 8, 8)).fit(ImageDataModule("digits").train_data())
    model = WarmStartFlowMatching(
        UNet(channels=8, channel_mults=(1,)),
        draft,
        t0=t0,
        sample_steps=steps,
        sample_shape=(1, 8, 8),
    )
    out = SpeedupCallback(num_samples=20, cold_steps=5).measure(model)
    assert out["speedup/nfe"] == steps
    assert out["speedup/nfe_cold_same_step"] == math.ceil(round(steps / (1 - t0), 9))
    assert out["speedup/guaranteed"] == pytest.approx(out["speedup/nfe_cold_same_step"] / steps)
    assert (
        out["time/draft_per_1k"] > 0
        and out["time/refine_per_1k"] > 0
        and out["speedup/wallclock"] > 0
    )


def test_speedup_callback_on_a_cold_module_reports_no_draft_time():
    model = FlowMatching(
        UNet(channels=8, channel_mults=(1,)), sample_steps=10, sample_shape=(1, 8, 8)
    )
    out = SpeedupCallback(num_samples=10, cold_steps=10).measure(model)
    assert out["speedup/guaranteed"] == 1.0 and out["time/draft_per_1k"] == 0.0


def test_sample_grid_callback_writes_a_png_grid(tmp_path):
    model = FlowMatching(UNet(channels=8, channel_mults=(1,)), sample_steps=2)
    grid = SampleGridCallback(num_samples=16, nrow=4, out_dir=str(tmp_path))
    trainer = quick_trainer(tmp_path, -1, limit_train_batches=1, callbacks=[grid])
    trainer.fit(model, ImageDataModule("digits", batch_size=16))
    assert len(grid.saved) == 1
    img = Image.open(grid.saved[0])
    # 4x4 tiles of 8 px upscaled 8x to 64 px (a viewable size), 2 px padding
    assert img.size == (4 * 64 + 5 * 2, 4 * 64 + 5 * 2)


def test_speedup_callback_on_a_token_refiner():
    """Finding: SpeedupCallback drew Gaussian noise shaped like int64 token ids and crashed."""
    import torch

    from ws_fm.drafts import NGramDraft
    from ws_fm.nets import TokenTransformer
    from ws_fm.refiners import DiscreteFlowMatching, WarmStartDiscreteFlowMatching

    V, L = 30, 8
    draft = NGramDraft(V, L).fit(torch.randint(0, V, (200, L)))
    net = TokenTransformer(V, L, dim=16, depth=1, heads=2)
    model = WarmStartDiscreteFlowMatching(net, draft, t0=0.75, sample_steps=2, sample_shape=(L,))
    out = SpeedupCallback(num_samples=8, cold_steps=4).measure(model)
    assert out["speedup/nfe"] == 2 and out["speedup/nfe_cold_same_step"] == 8
    assert out["speedup/guaranteed"] == 4.0 and out["speedup/wallclock"] > 0
    # A real cold flow as the reference: its own network is timed and counted.
    cold = DiscreteFlowMatching(TokenTransformer(V, L, dim=16, depth=1, heads=2), sample_shape=(L,))
    calls = []
    cold.net.register_forward_pre_hook(lambda *a: calls.append(1))
    out = SpeedupCallback(num_samples=8, cold_steps=4, cold_model=cold).measure(model)
    assert out["speedup/nfe_cold_same_step"] == 8 and len(calls) == 8 + 4
