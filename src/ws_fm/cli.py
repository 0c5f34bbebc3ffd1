"""The ``ws-fm`` (and ``lightning``) command: Lightning's ``LightningCLI`` over any
LightningModule and LightningDataModule, so ws_fm's systems and users' subclasses alike are
chosen with ``class_path`` in a YAML config, plus ``sample``::

    ws-fm fit --config lightning_configs/toy/ws_fm.yaml
    ws-fm fit --config lightning_configs/toy/ws_fm.yaml --model.init_args.t0=0.9
    ws-fm fit --config lightning_configs/toy/ws_fm.yaml --ckpt_path=last      # resume
    ws-fm sample --ckpt_path=runs/toy/ws_fm/checkpoints/last.ckpt --num_samples=1000
    ws-fm calibrate-t0 --config lightning_configs/toy/ws_fm.yaml   # t0 from the draft, no training
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI

# Imported so that LightningCLI knows ws_fm's systems, drafts and data modules: `fit --help`
# lists them under --model / --data, and short class names resolve.
from . import data as _data  # noqa: F401
from . import drafts as _drafts  # noqa: F401
from . import refiners as _refiners  # noqa: F401
from .distributed import shutdown_process_group

__all__ = ["WSFMCLI", "main"]


class WSFMCLI(LightningCLI):
    """LightningCLI with subclass mode for models and data; after ``fit`` it says where the
    run's checkpoints, logs, samples and banks are."""

    def after_fit(self) -> None:
        summary = run_summary(self.trainer)  # on every rank: trainer.log_dir is a collective
        if self.trainer.is_global_zero:
            print(summary, flush=True)


def run_summary(trainer: L.Trainer) -> str:
    """Where a finished fit put things, and how to sample from it."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from .cache import cache_dir
    from .callbacks import FinalCheckpoint, SampleGridCallback, SampleTextCallback

    lines = [f"fit finished at step {trainer.global_step}."]
    ckpts: list[Path] = []
    for cb in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(cb, FinalCheckpoint) and cb.path.is_file():
            ckpts.append(cb.path)
        elif isinstance(cb, ModelCheckpoint) and cb.dirpath:
            last = Path(cb.dirpath) / "last.ckpt"
            if last.is_file():
                ckpts.append(last)
        elif isinstance(cb, SampleGridCallback) and cb.saved:
            lines.append(f"  sample grids: {cb.saved[-1].parent}/")
        elif isinstance(cb, SampleTextCallback) and cb.texts:
            lines.append(f"  text samples: {cb.out_dir or trainer.log_dir}/samples.txt")
    # ModelCheckpoint's last.ckpt and FinalCheckpoint's are often one file, named two ways
    seen: set[Path] = set()
    ckpts = [p for p in ckpts if not (p.resolve() in seen or seen.add(p.resolve()))]
    for path in ckpts:
        lines.append(f"  checkpoint:   {path}")
    if trainer.log_dir:
        lines.append(f"  logs:         {trainer.log_dir}/")
    bank = getattr(trainer.datamodule, "bank", None)
    if bank is not None:
        lines.append(f"  sample bank:  {bank.path}/")
    lines.append(f"  cache:        {cache_dir()}/ (set WS_FM_CACHE to move it)")
    if ckpts:
        lines.append(f"sample from it: ws-fm sample --ckpt_path={ckpts[0]} --num_samples=64")
        lines.append("resume it:      ws-fm fit --config <this config> --ckpt_path=last")
    return "\n".join(lines)


def sample_main(argv: list[str]) -> None:
    """``ws-fm sample``: samples of a checkpoint to files (see :mod:`ws_fm.sampling`)."""
    import argparse

    from .checkpoints import load
    from .sampling import sample_to_files

    parser = argparse.ArgumentParser(
        prog="ws-fm sample",
        description="Draw samples from a trained ws_fm checkpoint and write them to files.",
    )
    parser.add_argument("--ckpt_path", required=True, help="the system's .ckpt file")
    parser.add_argument("--num_samples", type=int, default=64)
    parser.add_argument("--solver", default=None, help="default: the system's")
    parser.add_argument("--steps", type=int, default=None, help="default: the system's")
    parser.add_argument("--t0", type=float, default=None, help="warm start time (warm systems)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=1000)
    parser.add_argument(
        "--out", default=None, help="output folder (default: samples/<checkpoint name>)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    args = parser.parse_args(argv)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load(args.ckpt_path, map_location=device).to(device)
    out = args.out or str(Path("samples") / Path(args.ckpt_path).stem)
    report = sample_to_files(
        model,
        args.num_samples,
        out,
        solver=args.solver,
        steps=args.steps,
        seed=args.seed,
        batch_size=args.batch_size,
        t0=args.t0,
    )
    print(report.summary())


def _own_message(err: BaseException) -> str:
    """The message a person needs: the innermost error raised by ws_fm (or the user's own code)
    in the exception chain, else the first entry of jsonargparse's error list, else ``err``."""
    seen, chain = set(), []
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or e.__context__
    for exc in reversed(chain):
        tb = traceback.extract_tb(exc.__traceback__)
        if tb and not any(part in tb[-1].filename for part in _LIBRARY_PATHS):
            return f"{type(exc).__name__}: {exc}"
    text = str(err)
    if "Errors:" in text:
        for line in text.split("Errors:", 1)[1].splitlines():
            line = line.strip().removeprefix("- ").strip()
            if line and not line.startswith("Expected a <class 'NoneType'>"):
                return f"{type(err).__name__}: {line}"
    return f"{type(err).__name__}: {err}"


#: Third-party warnings that say nothing actionable about a ws_fm run.
KNOWN_WARNINGS = (
    r"LightningCLI's args parameter",  # ws-fm passes the command line on (it strips --debug)
    r"Found \d+ module\(s\) in eval mode",  # drafts are frozen in eval mode on purpose
    r".*does not have many workers",  # in-memory tensors: worker processes would not help
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"`weights_only` was not set",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
)


def quiet_known_warnings() -> None:
    """Filter :data:`KNOWN_WARNINGS` (they otherwise open every run)."""
    import warnings

    for pattern in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    # Lightning logs this one (not a warning) whenever it reads a checkpoint back.
    connector = logging.getLogger("lightning.pytorch.trainer.connectors.checkpoint_connector")
    connector.addFilter(lambda record: "`weights_only` was not set" not in record.getMessage())


def calibrate_main(argv: list[str]) -> None:
    """``ws-fm calibrate-t0 --config <warm refiner config>``: the latest ``t0`` the config's
    draft allows on its data (:func:`ws_fm.calibration.calibrate_t0`), with the curve; no
    training.  Every other argument (``--model...``, ``--data...``) is the config's override.
    With ``--ckpt_path`` of a refiner trained across ``t0``, the ``t0`` is read off its refined
    samples instead (:func:`ws_fm.calibration.calibrate_refined_t0`)."""
    import argparse

    from .calibration import DEFAULT_T0_GRID, calibrate_refined_t0, calibrate_t0

    parser = argparse.ArgumentParser(
        prog="ws-fm calibrate-t0",
        description="Choose a warm refiner's t0 from its draft and data, without training.",
    )
    parser.add_argument(
        "--grid",
        default=None,
        help="comma-separated candidate t0 values (default: "
        + ",".join(f"{t:g}" for t in DEFAULT_T0_GRID)
        + ", those inside t0_range for a refiner trained across t0)",
    )
    parser.add_argument("--n", type=int, default=2000, help="samples per set")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="draft: D <= (1 + tolerance) x the real-vs-real floor (default 0.5); refined "
        "samples (--ckpt_path): D <= (1 + tolerance) x the best on the grid (default 0.1)",
    )
    parser.add_argument(
        "--ckpt_path",
        default=None,
        help="a trained refiner across t0 (T0ConditionedFlowMatching): choose t0 from its "
        "refined samples (the latest t0 at parity with its best) instead of from the draft",
    )
    parser.add_argument(
        "--step_size", type=float, default=0.05, help="Euler step size (with --ckpt_path)"
    )
    parser.add_argument("--calibration_seed", type=int, default=0)
    parser.add_argument(
        "--features",
        choices=("samples", "minilm"),
        default="samples",
        help="what the distance compares: the samples themselves (token histograms for text), "
        "or, for text configs, 'minilm': MiniLM embeddings of the partly masked sentences "
        "(the embedding Fréchet distance, as the text benchmark calibrates)",
    )
    parser.add_argument(
        "--distance",
        choices=("auto", "sliced_wasserstein", "frechet"),
        default="auto",
        help="two-sample distance; auto: sliced Wasserstein up to 16 feature dimensions, "
        "Fréchet above",
    )
    ours, rest = parser.parse_known_args(argv)
    cli = WSFMCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        run=False,
        args=rest,
    )
    model, dm = cli.model, cli.datamodule
    if not hasattr(model, "calibrate_start"):
        raise ValueError(
            f"calibrate-t0 needs a warm refiner config; {type(model).__name__} has no draft."
        )
    data = getattr(dm, "data", dm)  # the data inside a WarmStartDataModule (no bank is built)
    data.setup("fit")
    train = data.train_data()
    model._draft_fit_data = train  # closed-form drafts are fitted on it, as in fit's setup
    model.ensure_draft_fitted()
    features = None
    if ours.features == "minilm":
        tokenizer = getattr(data, "tokenizer", None)
        if tokenizer is None or torch.is_floating_point(train):
            raise ValueError(
                f"--features minilm embeds text: it needs a text data module with a tokenizer "
                f"(ws_fm.data.TextDataModule), not {type(data).__name__}; leave --features out "
                "for other data."
            )
        from .metrics.text import MaskedTextEmbedding

        features = MaskedTextEmbedding(tokenizer)
    grid = [float(t) for t in ours.grid.split(",") if t.strip()] if ours.grid else None
    common = dict(distance=ours.distance, features=features, n=ours.n, seed=ours.calibration_seed)
    if ours.tolerance is not None:
        common["tolerance"] = ours.tolerance
    if ours.ckpt_path:
        from .checkpoints import load

        trained = load(ours.ckpt_path)
        cal = calibrate_refined_t0(trained, train, grid=grid, step_size=ours.step_size, **common)
        use = f"ws-fm sample --ckpt_path={ours.ckpt_path} --t0={cal.t0:g}"
    else:
        grid = grid or model.calibration_grid()
        cal = calibrate_t0(model.draft, train, path=model.path.path, grid=grid, **common)
        use = f"--model.init_args.t0={cal.t0:g}, or t0: auto"
    print("\n".join(cal.lines()))
    print(f"t0 = {cal.t0:g}  (use it with {use})")


# Frames in these are not where a user's mistake is explained.
_LIBRARY_PATHS = ("jsonargparse", "lightning", "torch/", "argparse", "typing")


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``ws-fm`` and ``lightning`` console scripts.

    Errors print as one line naming the problem (the library's own message); the full traceback
    only with ``--debug`` or ``WS_FM_DEBUG=1``.
    """
    argv = sys.argv[1:] if args is None else list(args)
    debug = "--debug" in argv or os.environ.get("WS_FM_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    quiet_known_warnings()
    try:
        _run(argv)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:
        if debug:
            raise
        print(f"error: {_own_message(err)}", file=sys.stderr)
        print("(full traceback: rerun with --debug or WS_FM_DEBUG=1)", file=sys.stderr)
        sys.exit(1)


def _run(argv: list[str]) -> None:
    if argv[:1] == ["sample"]:
        sample_main(argv[1:])
        return
    if argv[:1] == ["calibrate-t0"]:
        calibrate_main(argv[1:])
        return
    WSFMCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=argv,
    )
    shutdown_process_group()  # a clean exit for DDP runs


if __name__ == "__main__":
    main()
