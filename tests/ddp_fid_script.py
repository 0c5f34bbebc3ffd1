"""Run by test_fid.py: WS-FM on digits under DDP (2 CPU processes) with the draft bank and the FID
callback.  The FID callback's samples are fixed (rank r takes its share of a fixed tensor), so the
test can recompute the FID in one process on exactly the same samples.  Writes JSON on rank 0.
"""

import json
import sys
import warnings

import lightning as L
import torch
from helpers import quick_trainer

from ws_fm.callbacks import FIDCallback
from ws_fm.data import ImageDataModule, WarmStartDataModule
from ws_fm.distributed import shutdown_process_group
from ws_fm.drafts import GaussianDraft
from ws_fm.nets import UNet
from ws_fm.refiners import WarmStartFlowMatching


class FixedSamplesFID(FIDCallback):
    def __init__(self, fake, **kw):
        super().__init__(**kw)
        self.fake = fake

    def generate(self, pl_module, n):
        rank, world = pl_module.trainer.global_rank, pl_module.trainer.world_size
        mine = self.fake[rank::world]
        assert len(mine) == n, (len(mine), n)
        return mine


def main(out_path, fake_path, bank_dir):
    warnings.filterwarnings("ignore")
    L.seed_everything(0, verbose=False)
    fake = torch.load(fake_path)
    fid = FixedSamplesFID(fake, feature="classifier", num_samples=len(fake), every_n_epochs=0)
    model = WarmStartFlowMatching(
        UNet(channels=8, channel_mults=(1,)), GaussianDraft((1, 8, 8)), t0=0.5
    )
    dm = WarmStartDataModule(
        ImageDataModule("digits", batch_size=16), bank_size=256, bank_dir=bank_dir
    )
    trainer = quick_trainer(".", 2, devices=2, strategy="ddp", limit_val_batches=0, callbacks=[fid])
    trainer.fit(model, dm)
    builds = model.all_gather(torch.tensor(dm.builds))
    real_n = model.all_gather(fid.metric.real_features_num_samples.clone())
    if trainer.is_global_zero:
        json.dump(
            {
                "fid": fid.last,
                "builds": builds.tolist(),
                "world_size": trainer.world_size,
                "real_n": real_n.tolist(),
            },
            open(out_path, "w"),
        )


if __name__ == "__main__":
    main(*sys.argv[1:4])
    shutdown_process_group()
