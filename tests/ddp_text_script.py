"""Run by test_text_ddp.py: warm discrete flow matching under DDP (2 CPU processes) with a
teacher-forced draft bank, then the trigram-perplexity metric updated by each rank with its half
of fixed texts.  Writes JSON on rank 0."""

import json
import sys
import warnings
from pathlib import Path

import lightning as L
import torch
from helpers import quick_trainer, small_text_dm

from ws_fm.data import WarmStartDataModule
from ws_fm.distributed import shutdown_process_group
from ws_fm.drafts import NGramDraft
from ws_fm.metrics.text import TrigramPerplexity
from ws_fm.nets import TokenTransformer
from ws_fm.refiners import WarmStartDiscreteFlowMatching


def main(out_path, texts_path, folder):
    warnings.filterwarnings("ignore")
    L.seed_everything(0, verbose=False)
    dm = small_text_dm(Path(folder))
    V = dm.tokenizer.vocab_size
    draft = NGramDraft(vocab_size=V, seq_len=16).fit(dm.train_data())
    net = TokenTransformer(V, 16, dim=32, depth=1, heads=2)
    model = WarmStartDiscreteFlowMatching(net, draft, t0=0.8, coupling="teacher_forced")
    wdm = WarmStartDataModule(dm, bank_size=10_000, bank_dir=str(Path(folder) / "banks"))
    trainer = quick_trainer(folder, 2, devices=2, strategy="ddp", limit_val_batches=0)
    trainer.fit(model, wdm)
    builds = model.all_gather(torch.tensor(wdm.builds))
    texts = json.loads(Path(texts_path).read_text())
    metric = TrigramPerplexity()
    metric.update(texts[trainer.global_rank :: trainer.world_size])
    res = {k: float(v) for k, v in metric.compute().items()}  # synchronised across ranks
    if trainer.is_global_zero:
        res.update(builds=builds.tolist(), world_size=trainer.world_size)
        Path(out_path).write_text(json.dumps(res))


if __name__ == "__main__":
    try:
        main(*sys.argv[1:])
    finally:
        shutdown_process_group()
