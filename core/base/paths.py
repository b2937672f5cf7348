"""Where zoo keeps what it makes for itself: verified exports for ``--backend onnx``, feature
caches and trained bundles. Keras's weights stay in Keras's own cache (``zoo.sources.weights``).
"""

from __future__ import annotations

import os
from pathlib import Path

BUNDLES_PATH = "ZOO_BUNDLES"


def zoo_home() -> Path:
    """$ZOO_HOME, else $XDG_CACHE_HOME/zoo, else ~/.cache/zoo."""
    if "ZOO_HOME" in os.environ:
        return Path(os.environ["ZOO_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "zoo"


def bundles_home() -> Path:
    """Where ``zoo train -o NAME`` puts a trained model (a bundle)."""
    return zoo_home() / "bundles"


def extra_bundle_roots() -> list[Path]:
    """The folders ``$ZOO_BUNDLES`` lists (``os.pathsep``-separated): each a bundle folder or
    a folder of bundles."""
    entries = os.environ.get(BUNDLES_PATH, "").split(os.pathsep)
    return [Path(entry).expanduser() for entry in entries if entry.strip()]
