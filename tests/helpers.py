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
