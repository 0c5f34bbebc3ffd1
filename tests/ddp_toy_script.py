"""Run by test_ddp.py: WS-FM on a toy set with two CPU processes under DDP (gloo).

Lightning's ``ddp`` strategy re-launches this script for rank 1, so it must run as a script.
Rank 0 writes what every rank saw to the JSON path given as the first argument.
"""

import json
import sys
import warnings

import lightning as L
import torch
from helpers import quick_trainer

from ws_fm.data import ToyDataModule
from ws_fm.distributed import shutdown_process_group
from ws_fm.drafts import GaussianMixtureDraft
from ws_fm.nets import MLP
from ws_fm.refiners import WarmStartFlowMatching


class Recording(WarmStartFlowMatching):
    """Records the first training batch and training times, so the test can see that ranks get
    different shards and draw different random numbers."""

    def training_step(self, batch, batch_idx):
        if batch_idx == 0:
            self.first_batch = batch.detach().clone()
        return super().training_step(batch, batch_idx)

    def sample_time(self, n):
        t = super().sample_time(n)
        if not hasattr(self, "first_times"):
            self.first_times = t.detach().clone()
        return t


def main(out_path: str) -> None:
    warnings.filterwarnings("ignore")
    L.seed_everything(0, verbose=False)
    model = Recording(MLP(hidden=32), GaussianMixtureDraft(dim=2), t0=0.8)
    trainer = quick_trainer(".", 4, devices=2, strategy="ddp", limit_val_batches=2)
    dm = ToyDataModule("moons", n_train=2000, n_test=400, batch_size=64)
    trainer.fit(model, dm)
    val = trainer.validate(model, dm, verbose=False)[0]  # val/loss is synced across ranks
    params = torch.cat([p.detach().flatten() for p in model.net.parameters()])
    sample = model.sample(8, steps=2).samples
    local = torch.stack(
        [
            params.sum(),
            model.draft.means.sum(),
            model.first_batch.sum(),
            model.first_times.sum(),
            sample.sum(),
        ]
    )
    gathered = model.all_gather(local)  # (world_size, 5)
    if trainer.is_global_zero:
        json.dump(
            {
                "world_size": trainer.world_size,
                "per_rank": gathered.tolist(),
                "val_loss": float(val["val/loss"]),
            },
            open(out_path, "w"),
        )


if __name__ == "__main__":
    main(sys.argv[1])
    shutdown_process_group()
