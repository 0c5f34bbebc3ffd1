"""The one place that says where ws_fm caches things (trained FID classifiers, tokenizers).

``$WS_FM_CACHE`` when set, else ``~/.cache/ws_fm``; read at call time, so a test or a run can
point it elsewhere after import.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(*parts: str) -> Path:
    """``$WS_FM_CACHE/<parts...>`` (default ``~/.cache/ws_fm/<parts...>``); not created."""
    root = os.environ.get("WS_FM_CACHE") or str(Path.home() / ".cache" / "ws_fm")
    return Path(root, *parts)
