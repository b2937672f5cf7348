"""Where zoo keeps what it makes for itself: verified exports for ``--backend onnx``, feature
caches and trained bundles. Keras's weights stay in Keras's own cache (``zoo.weights``).
"""

from __future__ import annotations

import os
from pathlib import Path


def zoo_home() -> Path:
    """$ZOO_HOME, else $XDG_CACHE_HOME/zoo, else ~/.cache/zoo."""
    if "ZOO_HOME" in os.environ:
        return Path(os.environ["ZOO_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "zoo"
