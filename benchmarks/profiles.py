"""Benchmark profiles, as data: each names its task, methods, sweep, grids and budgets.

``make benchmark PROFILE=<name>`` runs one through :func:`benchmarks.engine.run_profile`; the
``-smoke`` profiles are seconds-long runs of the same code path, for the test suite.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .common import NFE_GRID
from .engine import Profile
from .images import ImageTask
from .structured import StructuredTextTask
from .text import TextTask
from .toy import ToyTask

__all__ = ["PROFILES", "profiles"]

TOY = Profile(
    name="toy",
    task=ToyTask(),
    drafts=("gmm",),
    # t0 = 0.5 left out since the peers joined, and the independent coupling swept at t0 = 0.8
    # only since the warm students joined (to stay within 15 minutes)
    t0s=(0.7, 0.8, 0.9),
    sweep_couplings=("minibatch_ot",),
    ablation_couplings=("independent",),
    # 3x256 MLP, Adam with cosine decay, EMA of the weights; drafts drawn on the fly
    train_steps=2000,
    batch_size=256,
    lr=2e-3,
    ema_decay=0.995,
    # sliced Wasserstein on 5,000 samples against 5,000 held-out points
    n_eval=5000,
    cold_grid=NFE_GRID,
    warm_grid=NFE_GRID,
    adaptive="all",
    n_time=1000,
    timing_repeats=3,
    # The peers, taught by the I-CFM flow: 2-RF and distillation on 20,000 of its Euler-100
    # pairs, FGM online; 4,000 steps each from the teacher's weights (FGM reached the teacher's
    # 100-step quality on checkerboard at 4,000 steps, not at 2,000: 0.096 vs 0.11, teacher 0.094).
    # The warm students (issue 13), taught by the minibatch-OT warm refiner at t0 = 0.8: warm
    # ReFlow and warm distillation on 20,000 of its Euler pairs (from t0 on the 100-step grid),
    # 4,000 steps each from its weights, as the cold peers.
    peers=("reflow", "distill", "fgm", "ws_reflow", "ws_distill"),
    peer_steps=4000,
    pair_count=20_000,
    fgm_lr=5e-4,
)

# Reduced to fit 15 minutes on 2 CPU cores: the t0 sweep (0.7-0.9; 0.5 left out since the peers
# joined) with minibatch-OT pairs for every draft;
# the independent ablation and nearest neighbour (with its memorisation figure) at t0 = 0.8;
# 600 training steps; Inception FID on 500 samples against 1,000 held-out images.
DIGITS = Profile(
    name="digits",
    task=ImageTask(inception_samples=500, inception_real=1000),
    drafts=("gaussian", "vae", "gan"),
    t0s=(0.7, 0.8, 0.9),
    ablation_couplings=("independent", "nearest_neighbour"),
    train_steps=600,
    batch_size=128,
    lr=1e-3,
    ema_decay=0.99,
    draft_steps=1500,
    bank_size=5000,
    n_eval=1000,
    warm_grid=(1, 2, 4, 8, 16, 32),
    adaptive="cold",
    n_time=200,
    timing_repeats=2,
    # The peers, taught by the I-CFM flow: 2-RF and distillation on 2,000 of its Euler-100
    # pairs, FGM online; 600 steps each from the teacher's weights, as the cold and warm flows.
    # FGM: lr 1e-3 with one online-flow step per generator step (SiD's K = 1), chosen from three
    # trials on this profile (seed-0 FID 17.5 at lr 3e-4, K = 3; 9.9 at 1e-3, K = 3; 8.6 at
    # 1e-3, K = 1; teacher at 100 NFE 8.1).
    # The warm students (issue 13) from the VAE draft (the GAN and Gaussian ones left out, and
    # timing on 200 samples, to stay within 15 minutes: 16.6 min with the GAN's), taught by its
    # minibatch-OT warm refiner at t0 = 0.8 on 2,000 of its Euler-20 pairs over [0.8, 1] (the
    # cold teacher's step size), 600 steps each from its weights.
    peers=("reflow", "distill", "fgm", "ws_reflow", "ws_distill"),
    warm_student_drafts=("vae",),
    warm_pair_steps=20,
    pair_count=2000,
    fgm_lr=1e-3,
    fgm_online_steps=1,
)

FASHION_MNIST_GPU = Profile(
    name="fashion_mnist",
    task=ImageTask(
        source="fashion_mnist",
        sample_shape=(1, 28, 28),
        unet_channels=64,
        channel_mults=(1, 2, 2),
        inception_samples=10_000,
        inception_real=0,
    ),
    drafts=("gaussian", "vae", "gan"),
    t0s=(0.5, 0.7, 0.8, 0.9, 0.95),
    ablation_couplings=("independent", "nearest_neighbour"),
    draft_steps=3000,
    train_steps=4000,
    batch_size=256,
    lr=5e-4,
    ema_decay=0.999,
    bank_size=20_000,
    n_eval=10_000,
    adaptive="cold+ablation",
    n_time=1000,
    workers=1,
    accelerator="gpu",
    note="GPU profile: Inception FID on 10,000 samples against the 10,000 test images.",
    # The peers on the GPU: 2-RF and distillation on 20,000 dopri5 pairs of the I-CFM teacher.
    peers=("reflow", "distill", "fgm"),
    peer_steps=8000,
    pair_count=20_000,
    pair_solver="dopri5",
    fgm_lr=1e-4,
)

FASHION_MNIST_CPU = Profile(
    name="fashion_mnist",
    task=ImageTask(
        source="fashion_mnist",
        sample_shape=(1, 28, 28),
        unet_channels=16,
        channel_mults=(1, 2),
        n_real=500,
        inception_samples=500,
    ),
    drafts=("gaussian", "vae", "gan"),
    t0s=(0.8,),
    draft_steps=400,
    train_steps=400,
    batch_size=64,
    bank_size=2000,
    n_eval=500,
    cold_grid=(1, 2, 4, 8, 16, 32, 64),
    warm_grid=(1, 2, 4, 8, 16),
    n_time=100,
    n_seeds=3,
    note=(
        "CPU fallback (no GPU was available): t0 = 0.8 with minibatch-OT pairs only, 400 "
        "training steps of a 16-channel UNet, FID on 500 samples against 500 test images; far "
        "below the GPU profile's budget, so the FIDs are high and noisy."
    ),
)

# Jane Austen (issue 12's re-run): the cold flow trains 2,500 steps (500 left its Fréchet distance
# flat in NFE); the warm refiners 1,000 steps each at t0 = 0.8 and 0.9 on teacher-forced pairs,
# with the committed-positions input, the whole draft at t0 (sigma = 0), and each token sampler
# scored on the same weights (gated at 0.5, their own; gated at 0.001, about 4 / V, which keeps a
# draft token unless the refiner finds it implausible; jump, the plain one; the committed
# sampler of the previous run is measured by text-structured). bf16 autocast:
# 1.39x faster per training step than fp32 for this transformer on the Intel Xeon with AMX that
# measured it (results/precision.md), with the same loss on the structured task.  The drafts'
# t0 is calibrated by the embedding Fréchet distance of the partly masked sentences (MiniLM,
# 500 per set, 2 noise draws: about 3 x 11 x 1,000 sentences per draft).
TEXT = Profile(
    name="text",
    task=TextTask(committed_input=True),
    methods=("cold_dfm", "ws_dfm"),
    drafts=("ngram", "lstm"),
    cold_couplings=("independent",),
    t0s=(0.8, 0.9),
    sweep_couplings=("teacher_forced",),
    samplers=("gated", "gated@0.001", "jump"),
    warm_kwargs=(("sigma", 0.0),),
    train_steps=2500,
    warm_steps=1000,
    batch_size=64,
    lr=1e-3,
    optimizer="adamw",
    precision="bf16-mixed",
    draft_steps=1000,
    bank_size=5000,
    bank_sizes=(("teacher_forced", 10_000),),
    n_eval=300,
    cold_grid=(1, 2, 4, 8, 16, 32, 64),
    warm_grid=(1, 2, 4, 8, 16),
    adaptive="none",
    n_time=100,
    timing_repeats=1,
)

# Structured text (benchmarks/structured.py): sentences of the copy-chain language, 16 tokens
# over 16 symbols; quality = fraction of the language's 22 constraints satisfied (higher is
# better). The warm refiners pair each training sentence with the draft run along it (teacher
# forcing), start from the whole draft (sigma = 0: no draft token masked at t0; an earlier run
# with sigma = 1 masked 20% of a draft that is often already valid, see
# results/text-structured-sigma1.md) and are scored under each token sampler on the same
# weights: gated (their own), committed and the plain jump sampler. 1,000 steps each, in fp32:
# bf16 autocast is 1.7x *slower* per step for this small network on the Intel Xeon with AMX that
# measured it (results/precision.md: 124 against 219 ms), and the run took 16.7 min in bf16.
TEXT_STRUCTURED = Profile(
    name="text-structured",
    task=StructuredTextTask(),
    methods=("cold_dfm", "ws_dfm"),
    drafts=("ngram", "lstm"),
    cold_couplings=("independent",),
    t0s=(0.5, 0.8, 0.9),
    sweep_couplings=("teacher_forced",),
    samplers=("gated", "committed", "jump"),
    warm_kwargs=(("sigma", 0.0),),
    train_steps=1000,
    batch_size=128,
    lr=2e-3,
    optimizer="adamw",
    ema_decay=0.99,
    draft_steps=600,
    bank_size=20_000,
    n_eval=500,
    cold_grid=(1, 2, 4, 8, 16, 32, 64),
    warm_grid=(1, 2, 4, 8, 16),
    adaptive="none",
    n_time=200,
    timing_repeats=1,
    lower_is_better=False,
)

# The GPU-sized structured-text profile: a longer and wider language (48 tokens over 24
# symbols: 24-token chains written twice) and a 6-layer, 384-wide transformer trained in bf16 for
# 20,000 steps at batch 256, four training processes sharing one CUDA device. Never run on CPU
# by default (make benchmark PROFILE=text-gpu refuses without CUDA).
TEXT_GPU = replace(
    TEXT_STRUCTURED,
    name="text-gpu",
    task=StructuredTextTask(
        vocab_size=24, half_len=24, branching=3, n_train=200_000, dim=384, depth=6, heads=6
    ),
    t0s=(0.7, 0.8, 0.9),
    train_steps=20_000,
    batch_size=256,
    lr=1e-3,
    ema_decay=0.999,
    precision="bf16-mixed",
    draft_steps=3000,
    bank_size=200_000,
    n_eval=2000,
    cold_grid=(1, 2, 4, 8, 16, 32, 64, 128),
    warm_grid=(1, 2, 4, 8, 16, 32),
    n_time=1000,
    timing_repeats=2,
    workers=4,
    accelerator="gpu",
)

_SMOKE = dict(train_steps=3, n_seeds=2, workers=1, timing_repeats=1, reference_steps=4)

_STRUCTURED_SMOKE = replace(
    TEXT_STRUCTURED,
    name="text-structured-smoke",
    task=StructuredTextTask(half_len=4, n_train=500, dim=16, depth=1, heads=2, n_show=2),
    t0s=(0.8,),
    draft_steps=3,
    batch_size=16,
    bank_size=128,
    n_eval=40,
    cold_grid=(1, 2),
    warm_grid=(1, 2),
    reference_steps=4,
    n_time=20,
    **{k: v for k, v in _SMOKE.items() if k != "reference_steps"},
)

PROFILES: dict[str, Profile] = {
    "toy": TOY,
    "toy-smoke": replace(
        TOY,
        name="toy-smoke",
        task=ToyTask(sets=("checkerboard",), n_train=2000),
        t0s=(0.8,),
        train_steps=30,
        n_eval=500,
        n_time=200,
        cold_grid=(1, 2, 4),
        warm_grid=(1, 2, 4),
        reference_steps=8,
        timing_repeats=1,
        n_seeds=2,
        workers=1,
        pair_count=256,
        pair_steps=8,
        peer_steps=40,  # not the full profile's 4,000 (seconds, not minutes)
    ),
    "digits": DIGITS,
    "digits-smoke": replace(
        DIGITS,
        name="digits-smoke",
        task=ImageTask(
            unet_channels=8,
            channel_mults=(1,),
            n_real=200,
            inception_samples=0,
            grid_samples=4,
            calibration_in_fid_features=True,  # the feature-space path, tested
        ),
        drafts=("gaussian",),
        t0s=(0.8,),
        ablation_couplings=("independent",),
        draft_steps=2,
        bank_size=200,
        n_eval=100,
        cold_grid=(1, 2, 4),
        warm_grid=(1, 2),
        n_time=50,
        pair_count=64,
        pair_steps=4,
        warm_student_drafts=(),  # the smoke's one draft
        warm_pair_steps=0,
        **_SMOKE,
    ),
    "fashion_mnist-gpu": FASHION_MNIST_GPU,
    "fashion_mnist-cpu": FASHION_MNIST_CPU,
    "text-structured": TEXT_STRUCTURED,
    "text-structured-smoke": _STRUCTURED_SMOKE,
    "text-gpu": TEXT_GPU,
    # seconds on a GPU: the GPU code path (CUDA, bf16, processes sharing the device)
    "text-gpu-smoke": replace(
        _STRUCTURED_SMOKE,
        name="text-gpu-smoke",
        accelerator="gpu",
        precision="bf16-mixed",
        workers=2,
    ),
    "text": TEXT,
    "text-smoke": replace(
        TEXT,
        name="text-smoke",
        task=TextTask(
            seq_len=16,
            vocab_size=500,
            dim=32,
            depth=1,
            heads=2,
            n_real=40,
            n_show=2,
            committed_input=True,
            calibration_n=40,
            calibration_repeats=1,
        ),
        t0s=(0.8,),
        warm_steps=0,
        precision="",
        draft_steps=3,
        batch_size=16,
        bank_size=64,
        bank_sizes=(("teacher_forced", 256),),
        n_eval=40,
        cold_grid=(1, 2, 4),
        warm_grid=(1, 2),
        reference_steps=5,
        n_time=20,
        **{k: v for k, v in _SMOKE.items() if k != "reference_steps"},
    ),
}


def profiles() -> dict[str, Profile]:
    """Every profile by name; ``fashion_mnist`` is the GPU profile where CUDA is available,
    else the labelled CPU fallback."""
    gpu = torch.cuda.is_available()
    return {**PROFILES, "fashion_mnist": FASHION_MNIST_GPU if gpu else FASHION_MNIST_CPU}
