"""The ``ws-fm`` (and ``lightning``) command: Lightning's ``LightningCLI`` over any
LightningModule and LightningDataModule, so ws_fm's systems and users' subclasses alike are
chosen with ``class_path`` in a YAML config::

    ws-fm fit --config lightning_configs/toy/ws_fm.yaml
    ws-fm fit --config lightning_configs/toy/ws_fm.yaml --model.init_args.t0=0.9
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.cli import LightningCLI

from .distributed import shutdown_process_group

__all__ = ["WSFMCLI", "main"]


class WSFMCLI(LightningCLI):
    """LightningCLI with subclass mode for models and data."""


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``ws-fm`` and ``lightning`` console scripts."""
    WSFMCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
    )
    shutdown_process_group()  # a clean exit for DDP runs


if __name__ == "__main__":
    main()
