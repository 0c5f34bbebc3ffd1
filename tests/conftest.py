import logging
import warnings

import pytest
import torch


@pytest.fixture(autouse=True)
def _quiet_and_seeded():
    torch.manual_seed(0)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    yield


@pytest.fixture(scope="session")
def moons_teacher(tmp_path_factory):
    """An I-CFM teacher on moons (independent pairs: curved trajectories, a poor 1-step Euler
    sample), trained once for the peers' tests."""
    import lightning as L
    from helpers import quick_trainer

    from ws_fm.callbacks import FinalCheckpoint
    from ws_fm.data import ToyDataModule
    from ws_fm.nets import MLP
    from ws_fm.refiners import FlowMatching

    tmp = tmp_path_factory.mktemp("moons_teacher")
    L.seed_everything(0)
    model = FlowMatching(MLP(dim=2, hidden=64, depth=2), coupling="independent")
    trainer = quick_trainer(
        tmp, 600, max_epochs=-1, callbacks=[FinalCheckpoint(str(tmp / "teacher.ckpt"))]
    )
    trainer.fit(model, ToyDataModule("moons", n_train=4096, batch_size=256))
    return tmp / "teacher.ckpt"
