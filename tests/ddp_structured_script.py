"""Run by test_structured_cli.py: a warm structured-text refiner (committed input, gated
sampler) under DDP (2 CPU processes) with ValidityCallback.  Writes JSON on rank 0: each rank's
own scores and first samples, and what the callback logged (synchronised)."""

import json
import sys
import warnings
from pathlib import Path

import lightning as L
import torch

from ws_fm.callbacks import ValidityCallback
from ws_fm.data import StructuredTextDataModule, WarmStartDataModule
from ws_fm.distributed import shutdown_process_group
from ws_fm.drafts import NGramDraft
from ws_fm.nets import TokenTransformer
from ws_fm.refiners import WarmStartDiscreteFlowMatching


def main(out_path, folder):
    warnings.filterwarnings("ignore")
    L.seed_everything(0, verbose=False)
    dm = StructuredTextDataModule(half_len=4, n_train=512, n_val=64, n_test=64, batch_size=16)
    draft = NGramDraft(vocab_size=16, seq_len=8).fit(dm.train_data())
    net = TokenTransformer(16, 8, dim=32, depth=1, heads=2, committed_input=True)
    model = WarmStartDiscreteFlowMatching(
        net, draft, t0=0.8, coupling="teacher_forced", sampler="gated", sample_steps=4
    )
    wdm = WarmStartDataModule(dm, bank_size=512, bank_dir=str(Path(folder) / "banks"))
    cb = ValidityCallback(num_samples=64, show=2)
    trainer = L.Trainer(
        max_steps=4,
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        val_check_interval=4,
        check_val_every_n_epoch=None,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=folder,
        callbacks=[cb],
    )
    trainer.fit(model, wdm)
    own = torch.tensor([cb.last["constraints"], cb.last["valid"]])
    ranks = model.all_gather(own)
    firsts = model.all_gather(cb.last_samples[:4])
    if trainer.is_global_zero:
        logged = trainer.callback_metrics
        Path(out_path).write_text(
            json.dumps(
                {
                    "world_size": trainer.world_size,
                    "per_rank": ranks.tolist(),
                    "first_samples": firsts.tolist(),
                    "logged": [float(logged["val/constraints"]), float(logged["val/valid"])],
                }
            )
        )


if __name__ == "__main__":
    try:
        main(*sys.argv[1:])
    finally:
        shutdown_process_group()
