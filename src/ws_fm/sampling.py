"""Sampling a trained system to files: what ``ws-fm sample`` runs.

``sample_to_files`` draws ``n`` samples from a loaded system (:func:`ws_fm.load`), timing the
drafts and the refinement apart, and writes them under ``out``:

- ``samples.pt``: ``{"samples", "nfe", "draft_seconds", "refine_seconds", "settings"}``;
- images (4-D samples): ``grid.png`` (upscaled to a viewable size) and ``images/000000.png`` ...;
- text (token systems with a tokenizer in the checkpoint): ``samples.txt``, one sample a line
  (line breaks inside a sample are written as ``\n`` / ``\r``).

Every file is written beside its destination and renamed into place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ._checks import check_positive_int
from ._files import atomic_write
from .paths import WarmStart
from .solvers import FIXED_STEP_METHODS

__all__ = ["SampleReport", "sample_to_files", "save_image_grid", "upscale"]


@dataclass
class SampleReport:
    """What :func:`sample_to_files` did: files written, counted NFE, seconds."""

    out: str
    files: list[str]
    num_samples: int
    nfe: int
    draft_seconds: float
    refine_seconds: float
    solver: str
    steps: int | None
    seed: int
    t_start: float

    def summary(self) -> str:
        return (
            f"wrote {self.num_samples} samples to {self.out} ({', '.join(self.files)}); "
            f"{self.nfe} NFE ({self.solver}, steps={self.steps}, from t={self.t_start:g}); "
            f"draft {self.draft_seconds:.2f} s, refine {self.refine_seconds:.2f} s"
        )


def upscale(x: Tensor, min_side: int = 64) -> Tensor:
    """Images ``(N, C, H, W)`` enlarged by an integer factor (nearest neighbour, no blur) so that
    each is at least ``min_side`` pixels on its shorter side."""
    factor = max(1, -(-min_side // min(x.shape[-2:])))
    return torch.nn.functional.interpolate(x, scale_factor=factor, mode="nearest")


def save_image_grid(x: Tensor, path: str | Path, nrow: int = 8, min_side: int = 64) -> Path:
    """Images in ``[-1, 1]`` as one PNG grid, each upscaled to at least ``min_side`` pixels."""
    from torchvision.utils import make_grid, save_image

    img = upscale(x.detach().float().clamp(-1, 1).cpu(), min_side)
    grid = make_grid(img, nrow=nrow, normalize=True, value_range=(-1, 1), pad_value=1.0)
    return atomic_write(Path(path), lambda tmp: save_image(grid, tmp, format="png"))


def sample_to_files(
    model: Any,
    num_samples: int,
    out: str | Path,
    solver: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 1000,
    t0: float | None = None,
) -> SampleReport:
    """Draw ``num_samples`` from ``model`` (a ws_fm system) in batches and write them to ``out``.

    ``t0`` starts a warm-start system's refinement at another time than it was trained for (its
    path is re-wrapped with the same sigma), or picks the start time of a refiner trained across
    ``t0`` (:class:`~ws_fm.refiners.T0ConditionedFlowMatching`, inside its range); the counted
    NFE changes accordingly.
    """
    check_positive_int(num_samples, "num_samples")
    check_positive_int(batch_size, "batch_size")
    solver = model.check_solver(solver)
    if steps is None and solver in FIXED_STEP_METHODS:
        steps = model.sample_steps
    if t0 is not None:
        if not isinstance(model.path, WarmStart):
            raise ValueError(
                f"t0={t0} applies to warm-start systems; this checkpoint holds a "
                f"{type(model).__name__}, which samples from t=0."
            )
        set_t0 = getattr(model, "set_t0", None)  # a refiner trained across t0 checks its range
        if set_t0 is not None:
            set_t0(t0)
        else:
            model.path = WarmStart(model.path.path, t0, model.path.sigma)
    model.eval()
    out = Path(out)
    chunks, nfe, draft_s, refine_s = [], 0, 0.0, 0.0
    with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, num_samples, batch_size):
            n = min(batch_size, num_samples - start)
            t = time.perf_counter()
            source = model.draw_source(n)
            _sync(model)
            draft_s += time.perf_counter() - t
            t = time.perf_counter()
            res = model.sample(n, solver=solver, steps=steps, source=source)
            _sync(model)
            refine_s += time.perf_counter() - t
            chunks.append(res.samples.cpu())
            nfe = res.nfe  # per batch: every batch takes the same steps
    samples = torch.cat(chunks)
    files = []
    settings = {"solver": solver, "steps": steps, "seed": seed, "t_start": model.path.t_start}
    payload = {
        "samples": samples,
        "nfe": nfe,
        "draft_seconds": draft_s,
        "refine_seconds": refine_s,
        "settings": settings,
    }
    files.append(atomic_write(out / "samples.pt", lambda tmp: torch.save(payload, tmp)).name)
    if samples.dim() == 4:
        files.append(save_image_grid(samples[:64], out / "grid.png").name)
        from torchvision.utils import save_image

        for i, img in enumerate(upscale(samples.clamp(-1, 1), 64)):
            dest = out / "images" / f"{i:06d}.png"
            atomic_write(
                dest,
                lambda tmp, img=img: save_image(
                    img, tmp, normalize=True, value_range=(-1, 1), format="png"
                ),
            )
        files.append("images/")
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        # one sample a line: line breaks inside a sample are written as the two characters \n
        lines = [
            t.replace("\r", "\\r").replace("\n", "\\n") for t in tok.decode_batch(samples.tolist())
        ]
        text = "\n".join(lines) + "\n"
        files.append(atomic_write(out / "samples.txt", lambda tmp: Path(tmp).write_text(text)).name)
    return SampleReport(
        out=str(out),
        files=files,
        num_samples=num_samples,
        nfe=nfe,
        draft_seconds=draft_s,
        refine_seconds=refine_s,
        solver=solver,
        steps=steps,
        seed=seed,
        t_start=float(model.path.t_start),
    )


def _sync(model: Any) -> None:
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
