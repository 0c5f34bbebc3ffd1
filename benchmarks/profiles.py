"""Benchmark profiles: each fixes the data, the methods swept and the training budget."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ToyProfile", "PROFILES"]

from .common import NFE_GRID


@dataclass(frozen=True)
class ToyProfile:
    """The paper's synthetic setting: cold FM (I-CFM, OT-CFM) and WS-FM on toy 2-D sets."""

    name: str = "toy"
    datasets: tuple[str, ...] = ("checkerboard", "moons", "8gaussians", "spirals")
    t0s: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9)
    couplings: tuple[str, ...] = ("independent", "minibatch_ot")
    # Training: 3x256 MLP, Adam with cosine decay, EMA of the weights.
    train_steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    ema_decay: float = 0.995
    hidden: int = 256
    depth: int = 3
    draft_components: int = 4
    n_train: int = 20_000
    # Evaluation: sliced Wasserstein between n_eval samples and n_eval held-out points.
    n_eval: int = 5000
    # Timing: best of timing_repeats runs on n_time samples, reported per 1,000 samples.
    n_time: int = 1000
    nfe_grid: tuple[int, ...] = NFE_GRID
    reference_steps: int = 100
    rtol: float = 1e-5
    atol: float = 1e-5
    timing_repeats: int = 3
    # Parity is judged on the mean over n_seeds sampling seeds (benchmarks.common.seed_statistics).
    n_seeds: int = 5
    workers: int = 2
    seed: int = 0
    extra: dict[str, str] = field(default_factory=dict)


PROFILES: dict[str, ToyProfile] = {
    "toy": ToyProfile(),
    # A seconds-long run of the same code path, for the test suite.
    "toy-smoke": ToyProfile(
        name="toy-smoke",
        datasets=("checkerboard",),
        t0s=(0.8,),
        train_steps=30,
        n_train=2000,
        n_eval=500,
        n_time=200,
        nfe_grid=(1, 2, 4),
        reference_steps=8,
        timing_repeats=1,
        n_seeds=2,
        workers=1,
    ),
}


def _image_profiles() -> dict[str, object]:
    import torch

    from .images import ImageProfile

    fashion_gpu, fashion_cpu = _fashion_mnist_profiles()
    return {
        # Reduced to fit 15 minutes on 2 CPU cores: see ImageProfile and the results file.
        "digits": ImageProfile(),
        # A seconds-long run of the same code path, for the test suite.
        "digits-smoke": ImageProfile(
            name="digits-smoke",
            drafts=("gaussian",),
            draft_steps=2,
            t0s=(0.8,),
            ablation_couplings=("independent",),
            train_steps=3,
            bank_size=200,
            n_eval=100,
            cold_grid=(1, 2, 4),
            warm_grid=(1, 2),
            reference_steps=4,
            n_time=50,
            timing_repeats=1,
            inception_samples=0,
            n_seeds=2,
            n_real=200,
            grid_samples=4,
            workers=1,
            unet_channels=8,
            channel_mults=(1,),
        ),
        # One GPU where CUDA is available, else the labelled CPU fallback.
        "fashion_mnist": fashion_gpu if torch.cuda.is_available() else fashion_cpu,
        "fashion_mnist-gpu": fashion_gpu,
        "fashion_mnist-cpu": fashion_cpu,
    }


def _fashion_mnist_profiles() -> tuple[object, object]:
    from .images import ImageProfile

    gpu = ImageProfile(
        name="fashion_mnist",
        source="fashion_mnist",
        sample_shape=(1, 28, 28),
        draft_steps=3000,
        unet_channels=64,
        channel_mults=(1, 2, 2),
        train_steps=4000,
        batch_size=256,
        lr=5e-4,
        ema_decay=0.999,
        bank_size=20_000,
        n_eval=10_000,
        n_time=1000,
        inception_samples=10_000,
        workers=1,
        accelerator="gpu",
        note="GPU profile: Inception FID on 10,000 samples against the 10,000 test images.",
    )
    cpu = ImageProfile(
        name="fashion_mnist",
        source="fashion_mnist",
        sample_shape=(1, 28, 28),
        draft_steps=400,
        t0s=(0.8,),
        ablation_couplings=(),
        unet_channels=16,
        channel_mults=(1, 2),
        train_steps=400,
        batch_size=64,
        bank_size=2000,
        n_eval=500,
        n_real=500,
        cold_grid=(1, 2, 4, 8, 16, 32, 64),
        warm_grid=(1, 2, 4, 8, 16),
        n_time=100,
        inception_samples=500,
        n_seeds=3,
        note=(
            "CPU fallback (no GPU was available): t0 = 0.8 with minibatch-OT pairs only, "
            "400 training steps of a 16-channel UNet, FID on 500 samples against 500 test "
            "images; far below the GPU profile's budget, so the FIDs are high and noisy."
        ),
    )
    return gpu, cpu


def _text_profiles() -> dict[str, object]:
    from .text import TextProfile

    return {
        "text": TextProfile(),
        # A seconds-long run of the same code path, for the test suite.
        "text-smoke": TextProfile(
            name="text-smoke",
            seq_len=16,
            vocab_size=500,
            drafts=("ngram", "lstm"),
            lstm_steps=3,
            t0s=(0.8,),
            dim=32,
            depth=1,
            heads=2,
            train_steps=3,
            batch_size=16,
            bank_size=64,
            tf_bank_size=256,
            n_eval=40,
            n_real=40,
            cold_grid=(1, 2, 4),
            warm_grid=(1, 2),
            reference_steps=5,
            n_time=20,
            timing_repeats=1,
            n_show=2,
            n_seeds=2,
            workers=1,
        ),
    }
