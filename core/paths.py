"""Where zoo keeps what it makes for itself: exports, feature caches, trained bundles."""

from __future__ import annotations

import os
from pathlib import Path


def zoo_home() -> Path:
    """zoo's own cache: $ZOO_HOME, else $XDG_CACHE_HOME/zoo, else ~/.cache/zoo."""
    if "ZOO_HOME" in os.environ:
        return Path(os.environ["ZOO_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "zoo"
