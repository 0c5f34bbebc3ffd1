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
