"""Helpers shared by the tests."""

import lightning as L


def quick_trainer(tmp_path, steps=3, **kw):
    """A CPU Trainer without loggers, checkpoints or bars, for a few steps."""
    args = dict(
        max_steps=steps,
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        default_root_dir=tmp_path,
    )
    return L.Trainer(**{**args, **kw})


SMALL_CORPUS = " ".join(
    f"Sentence number {i} tells of the {['house', 'garden', 'letter', 'ball'][i % 4]} "
    f"and of {['Emma', 'Anne', 'Elinor'][i % 3]}, who was {['kind', 'proud', 'wise'][i % 3]}."
    for i in range(400)
)


def small_text_dm(folder, seq_len=16, vocab_size=300, batch_size=16):
    """A TextDataModule on a small generated corpus (seconds to build)."""
    from ws_fm.data import TextDataModule

    path = folder / "corpus.txt"
    path.write_text(SMALL_CORPUS)
    return TextDataModule(
        str(path),
        seq_len=seq_len,
        vocab_size=vocab_size,
        cache_dir=str(folder),
        batch_size=batch_size,
    )


def run_ws_fm(args, cwd, cache=None, ok=True, timeout=600):
    """Run the ``ws-fm`` CLI in a subprocess (cache in ``cache`` or ``cwd/cache``); with ``ok``
    assert it succeeded.  Returns the CompletedProcess."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run(
        [str(Path(sys.executable).parent / "ws-fm"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            **os.environ,
            "WS_FM_CACHE": str(cache or Path(cwd) / "cache"),
            "PYTHONWARNINGS": "ignore",
        },
    )
    if ok:
        assert out.returncode == 0, out.stderr[-4000:]
    return out
