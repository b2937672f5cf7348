"""Trained models (bundles, see ``zoo.sources.bundle``) and imported Keras files
(``zoo.sources.imported``) registered as ordinary models.

Reads only the bundles' JSON cards, so ``zoo list`` stays fast; a bundle that cannot be read
is a warning naming its folder, not an error.
"""

from __future__ import annotations

import warnings

from zoo import hookimpl
from zoo.base.errors import ZooError
from zoo.plugin.registry import PluginWarning
from zoo.sources.bundle import bundle_folders, spec_from_folder


@hookimpl
def register_models(register):
    for folder in bundle_folders():
        try:
            spec = spec_from_folder(folder)
        except ZooError as error:  # a bundle's or an imported model's
            warnings.warn(f"skipping a bundle: {error}", PluginWarning, stacklevel=1)
            continue
        except (KeyError, TypeError, ValueError) as error:
            warnings.warn(
                f"skipping bundle {folder}: bad card ({error})", PluginWarning, stacklevel=1
            )
            continue
        register(spec)
