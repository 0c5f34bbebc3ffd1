"""bf16 mixed precision against fp32 for the training step of the profiles' networks, as ratios
measured in one run on one device; and whether the structured-text quality holds in bf16.

``make benchmark PROFILE=precision`` (or ``python -m benchmarks.precision``) writes
``benchmarks/results/precision.{json,md}``.  Each case trains its profile's network with
Lightning at ``precision="32-true"`` and ``precision="bf16-mixed"`` (autocast; on a CPU with
AMX-BF16 / AVX512-BF16 the matrix products run in bf16 in hardware), ``warmup`` steps untimed, then
the median wall-clock of ``steps`` steps.  The quality check trains the text-structured profile's
cold flow for ``quality_steps`` steps in each precision from the same seed and scores 500 samples
at 32 sampler steps with the language's exact checker.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from ws_fm.nets import TokenTransformer
from ws_fm.refiners import DiscreteFlowMatching, FlowMatching

from .common import bench_trainer, cpu_bf16_flags, quiet
from .profiles import PROFILES
from .report import device_name

PRECISIONS = ("32-true", "bf16-mixed")


class StepTimer(L.Callback):
    """Wall-clock of each training step after ``warmup`` steps."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.times, self._start = warmup, [], 0.0

    def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if trainer.global_step > self.warmup:
            self.times.append(time.perf_counter() - self._start)


def _cases(batch_scale: int = 1) -> dict[str, tuple[Any, torch.Tensor, int]]:
    """name -> (model factory, training data, batch size): the networks of the profiles."""
    digits = PROFILES["digits"]
    text = PROFILES["text"].task
    g = torch.Generator().manual_seed(0)
    return {
        "structured text: TokenTransformer 3x128, 16 tokens, batch 128": (
            lambda: DiscreteFlowMatching(
                TokenTransformer(16, 16, dim=128, depth=3, heads=4), sample_shape=(16,)
            ),
            torch.randint(16, (4096, 16), generator=g),
            128 * batch_scale,
        ),
        f"Jane Austen text: TokenTransformer {text.depth}x{text.dim}, {text.seq_len} tokens, "
        "batch 64": (
            lambda: DiscreteFlowMatching(
                TokenTransformer(text.vocab_size, text.seq_len, text.dim, text.depth, text.heads),
                sample_shape=(text.seq_len,),
            ),
            torch.randint(text.vocab_size, (4096, text.seq_len), generator=g),
            64 * batch_scale,
        ),
        "text-gpu: TokenTransformer 6x384, 64 tokens, batch 64": (
            lambda: DiscreteFlowMatching(
                TokenTransformer(32, 64, dim=384, depth=6, heads=6), sample_shape=(64,)
            ),
            torch.randint(32, (4096, 64), generator=g),
            64 * batch_scale,
        ),
        f"digits: UNet {digits.task.unet_channels} ch, 8x8, batch 128": (
            lambda: FlowMatching(
                digits.task.network(digits, "digits"), sample_shape=digits.task.sample_shape
            ),
            torch.randn(4096, *digits.task.sample_shape, generator=g),
            128 * batch_scale,
        ),
    }


def time_steps(
    factory: Any, data: torch.Tensor, batch: int, precision: str, steps: int, warmup: int, acc: str
) -> float:
    """Median seconds of one training step."""
    L.seed_everything(0, verbose=False)
    timer = StepTimer(warmup)
    loader = DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
    bench_trainer(warmup + steps, [timer], acc, precision).fit(factory(), loader)
    return statistics.median(timer.times)


def structured_quality(precision: str, steps: int, acc: str) -> dict[str, float]:
    """The text-structured cold flow trained ``steps`` steps in ``precision``: its last training
    losses and its exact scores on 500 samples at 32 sampler steps."""
    p = PROFILES["text-structured"]
    task = p.task
    dm = task.datamodule(p, "copychain")
    L.seed_everything(0, verbose=False)
    model = DiscreteFlowMatching(
        TokenTransformer(task.vocab_size, task.seq_len, task.dim, task.depth, task.heads),
        sample_shape=(task.seq_len,),
        optimizer=lambda params: torch.optim.AdamW(params, lr=p.lr),
    )
    losses: list[float] = []

    class Losses(L.Callback):
        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, *a: Any) -> None:
            losses.append(float(outputs["loss"]))

    bench_trainer(steps, [Losses()], acc, precision).fit(model, dm)
    model = model.eval()
    torch.manual_seed(0)
    x = model.sample(500, steps=32).samples.cpu()
    tail = losses[-50:]
    return {"final_loss": sum(tail) / len(tail), **dm.language.scores(x)}


def main(argv: list[str] | None = None, command: str | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--steps", type=int, default=40, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU")
    parser.add_argument("--quality-steps", type=int, default=600)
    args = parser.parse_args(argv)
    quiet()
    acc = "gpu" if torch.cuda.is_available() else "cpu"
    if acc == "cpu":
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    timings = []
    for name, (factory, data, batch) in _cases().items():
        sec = {
            prec: time_steps(factory, data, batch, prec, args.steps, args.warmup, acc)
            for prec in PRECISIONS
        }
        timings.append(
            {
                "case": name,
                "fp32_ms": 1000 * sec["32-true"],
                "bf16_ms": 1000 * sec["bf16-mixed"],
                "speedup": sec["32-true"] / sec["bf16-mixed"],
            }
        )
        print(f"{name}: fp32 / bf16 = {timings[-1]['speedup']:.2f}x", flush=True)
    quality = {prec: structured_quality(prec, args.quality_steps, acc) for prec in PRECISIONS}
    report = {
        "command": command or "python -m benchmarks.precision " + shlex.join(argv or sys.argv[1:]),
        "date": dt.date.today().isoformat(),
        "device": device_name(),
        "cpu_flags": cpu_bf16_flags(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "timings": timings,
        "structured_quality": {"steps": args.quality_steps, **quality},
        "seconds": time.perf_counter() - start,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "precision" if acc == "cpu" else "precision_gpu"
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(report))
    print(f"wrote {args.out / stem}.json, .md in {report['seconds']:.0f} s")
    return 0


def markdown(r: dict[str, Any]) -> str:
    flags = ", ".join(r["cpu_flags"]) or "none"
    lines = [
        "# bf16 mixed precision against fp32: training step",
        "",
        f"- command: `{r['command']}`",
        f"- date: {r['date']}",
        f"- device: {r['device']}"
        + ("" if r["device"].startswith("cuda") else f"; bf16 CPU flags: {flags}"),
        f"- torch {r['torch']}, {r['threads']} thread(s); median of the timed steps, one run",
        "",
        "| network | fp32 ms / step | bf16 ms / step | fp32 / bf16 |",
        "|---|---|---|---|",
    ]
    for t in r["timings"]:
        lines.append(
            f"| {t['case']} | {t['fp32_ms']:.1f} | {t['bf16_ms']:.1f} | {t['speedup']:.2f}x |"
        )
    q = r["structured_quality"]
    lines += [
        "",
        f"## Quality: the text-structured cold flow after {q['steps']} steps, same seed",
        "",
        "| precision | final loss (last 50 steps) | constraints | valid | copy | transitions |",
        "|---|---|---|---|---|---|",
    ]
    for prec in PRECISIONS:
        m = q[prec]
        lines.append(
            f"| {prec} | {m['final_loss']:.4f} | {m['constraints']:.3f} | {m['valid']:.3f} | "
            f"{m['copy']:.3f} | {m['transitions']:.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
