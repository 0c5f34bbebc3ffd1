"""Checkpoints that stand alone: a refiner's ``.ckpt`` samples with no other argument or file.

Lightning rebuilds a module from its checkpoint by calling ``__init__`` with the saved
hyperparameters; the systems' module arguments (the backbone ``net``, the ``draft``) are not
hyperparameters, so on their own they would have to be passed again.  :class:`StandaloneCheckpoint`
stores each of them as a *skeleton*: the module pickled with its parameters and persistent buffers
on the ``meta`` device (no data: the weights are in the checkpoint's ``state_dict`` once), and
rebuilds them on load before Lightning restores the weights::

    model = WarmStartFlowMatching.load_from_checkpoint("runs/digits/ws_fm/checkpoints/last.ckpt")
    model = ws_fm.load("...ckpt")            # the class is read from the checkpoint

A draft loaded through :class:`~ws_fm.drafts.DraftCheckpoint` travels inside the refiner's
skeleton (its wrapped module), so the draft's own checkpoint file is not needed either.
Loading unpickles classes named in the file: load only checkpoints you trust (as with any
``torch.load(weights_only=False)``).
"""

from __future__ import annotations

import contextvars
import copy
import importlib
import io
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from torch import nn

__all__ = [
    "StandaloneCheckpoint",
    "skeleton",
    "materialise",
    "load",
    "checkpoint_class",
    "outside_cli_instantiation",
]

#: checkpoint keys written by :class:`StandaloneCheckpoint`
CLASS_KEY = "ws_fm_class"
MODULES_KEY = "ws_fm_modules"


def _swap_tensors(module: nn.Module, make: Any) -> nn.Module:
    """Replace every parameter and persistent buffer of ``module`` (in place) by ``make(t)``,
    keeping tied tensors tied."""
    memo: dict[int, Any] = {}
    for m in module.modules():
        for name, p in list(m._parameters.items()):
            if p is not None:
                if id(p) not in memo:
                    memo[id(p)] = nn.Parameter(make(p), requires_grad=p.requires_grad)
                m._parameters[name] = memo[id(p)]
        for name, b in list(m._buffers.items()):
            if b is not None and name not in m._non_persistent_buffers_set:
                if id(b) not in memo:
                    memo[id(b)] = make(b)
                m._buffers[name] = memo[id(b)]
    return module


def skeleton(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose saved tensors live on the ``meta`` device (no data)."""
    trainer = getattr(module, "_trainer", None)
    if trainer is not None:
        module._trainer = None  # type: ignore[assignment]  # never copy a Trainer along
    try:
        copied = copy.deepcopy(module)
    finally:
        if trainer is not None:
            module._trainer = trainer
    return _swap_tensors(copied, lambda t: torch.empty_like(t, device="meta"))


def materialise(module: nn.Module) -> nn.Module:
    """A skeleton made real on the CPU (uninitialised tensors: load a ``state_dict`` next)."""
    return _swap_tensors(
        module, lambda t: torch.empty_like(t, device="cpu") if t.is_meta else t.cpu()
    )


def _to_bytes(module: nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save(module, buf)
    return buf.getvalue()


def _from_bytes(data: bytes | nn.Module) -> nn.Module:
    if isinstance(data, nn.Module):
        return data
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def checkpoint_class(checkpoint: dict[str, Any]) -> type[L.LightningModule]:
    """The LightningModule class a checkpoint was saved from (``ws_fm_class``)."""
    name = checkpoint.get(CLASS_KEY)
    if not name:
        raise ValueError(
            "this checkpoint does not record its class (it was not written by a ws_fm system, or "
            "by an older version): call YourClass.load_from_checkpoint(path, net=..., ...) instead."
        )
    module_name, _, cls_name = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"the checkpoint's class {name!r} cannot be imported ({err}).") from err
    return cls


def _read(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; a run writes them under its checkpoint folder "
            "(e.g. runs/digits/ws_fm/checkpoints/last.ckpt)."
        )
    # memory-mapped: only the small entries read here (class, skeletons) are loaded, not the
    # weights, which Lightning reads afterwards
    return torch.load(path, map_location="cpu", weights_only=False, mmap=True)


class StandaloneCheckpoint:
    """Mixin for LightningModules: module-valued constructor arguments travel in the checkpoint.

    ``checkpoint_modules`` names them (attributes of the same name); subclasses extend it.
    """

    checkpoint_modules: ClassVar[tuple[str, ...]] = ()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]
        cls = type(self)
        checkpoint[CLASS_KEY] = f"{cls.__module__}.{cls.__qualname__}"
        # Pickled to bytes: the checkpoint itself stays loadable with torch.load(weights_only=True)
        # (what Lightning does when it resumes a run); only ws_fm.load unpickles the skeletons.
        modules = {name: getattr(self, name, None) for name in self.checkpoint_modules}
        checkpoint[MODULES_KEY] = {
            name: _to_bytes(skeleton(m)) for name, m in modules.items() if m is not None
        }

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | Path,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Lightning's ``load_from_checkpoint``; module arguments not given in ``kwargs`` are
        rebuilt from the checkpoint's skeletons."""
        modules = _read(checkpoint_path).get(MODULES_KEY, {})
        for name, sk in modules.items():
            if name not in kwargs:
                kwargs[name] = materialise(_from_bytes(sk))
        kwargs.setdefault("weights_only", False)  # hyperparameters may hold objects
        return super().load_from_checkpoint(  # type: ignore[misc]
            checkpoint_path,
            map_location=map_location,
            hparams_file=hparams_file,
            strict=strict,
            **kwargs,
        )


def outside_cli_instantiation(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in an empty context.  LightningCLI instantiates the model inside a
    context that hands *its* hyperparameters to every LightningModule built meanwhile, so a draft
    or teacher loaded in a refiner's ``__init__`` would record the refiner's hyperparameters as
    its own (and a sample bank fingerprinted by them would go stale whenever the refiner's config
    changed).  An empty :class:`contextvars.Context` holds every context variable at its
    default, so the loaded module keeps its own."""
    return contextvars.Context().run(fn, *args, **kwargs)


def load(path: str | Path, map_location: Any = None, **kwargs: Any) -> L.LightningModule:
    """Load any ws_fm system from its checkpoint alone; the class is read from the file."""
    cls = checkpoint_class(_read(path))
    return outside_cli_instantiation(
        cls.load_from_checkpoint, path, map_location=map_location, **kwargs
    )
