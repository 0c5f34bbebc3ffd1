"""Run by test_fid.py: the FID callback under DDP (2 CPU processes) on samples the model itself
generates, ``K / 2`` per rank.  Rank 0 writes the FID, the model's weights and each rank's first
samples, so the test can check that the ranks drew different samples and that the two-process
FID matches a single-process FID of the same model at the same total ``K``.
"""

import json
import sys
import warnings

import lightning as L
import torch
from helpers import quick_trainer

from ws_fm.callbacks import FIDCallback
from ws_fm.data import ImageDataModule
from ws_fm.distributed import shutdown_process_group
from ws_fm.nets import UNet
from ws_fm.refiners import FlowMatching


def main(out_path, weights_path, k):
    warnings.filterwarnings("ignore")
    L.seed_everything(0, verbose=False)
    fid = FIDCallback(feature="classifier", num_samples=int(k), every_n_epochs=0, steps=4)
    model = FlowMatching(UNet(channels=8, channel_mults=(1,)))
    dm = ImageDataModule("digits", batch_size=16)
    trainer = quick_trainer(".", 2, devices=2, strategy="ddp", limit_val_batches=0, callbacks=[fid])
    trainer.fit(model, dm)
    first = model.all_gather(model.sample(4, steps=2).samples)  # (world, 4, 1, 8, 8)
    if trainer.is_global_zero:
        torch.save(model.state_dict(), weights_path)
        same = bool(torch.equal(first[0], first[1]))
        json.dump({"fid": fid.last, "ranks_drew_the_same": same}, open(out_path, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
    shutdown_process_group()
