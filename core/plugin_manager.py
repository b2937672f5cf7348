"""The plugin manager: the built-in plugins first, then every installed ``zoo`` entry point.

Built-ins are ordinary plugin modules, registered exactly as a third party's are. A third-party
plugin that fails to import is recorded, not raised: zoo keeps working without it.

Environment:
    ZOO_LOAD_PLUGINS     comma-separated distribution names to load (empty: built-ins only);
                         unset loads every installed plugin.
    ZOO_DISABLE_PLUGINS  comma-separated plugin (entry point) or distribution names to skip.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata

import pluggy

from . import hookspecs
from .errors import describe_exception
from .version import API_VERSION, __version__

DEFAULT_PLUGINS = (
    "zoo.plugins.preprocessors",
    "zoo.plugins.keras_applications",
    "zoo.plugins.keras_backend",
    "zoo.plugins.onnx_backend",
    "zoo.plugins.onnx_exporter",
    "zoo.plugins.bundles",
    "zoo.plugins.commands",
)
ENTRY_POINT_GROUP = "zoo"

pm = pluggy.PluginManager("zoo")
pm.add_hookspecs(hookspecs)


@dataclass
class PluginInfo:
    """A plugin zoo found: loaded, or failed with ``error``."""

    name: str
    version: str
    builtin: bool
    distribution: str | None = None
    error: str | None = None


_plugins: dict[str, PluginInfo] = {}
_loaded = False


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def load_plugins() -> dict[str, PluginInfo]:
    """Register the built-ins and the installed plugins, once; return what was found by name."""
    global _loaded
    if _loaded:
        return _plugins
    _loaded = True
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
        _plugins[module_name] = PluginInfo(module_name, __version__, builtin=True)

    wanted = _names_from_env("ZOO_LOAD_PLUGINS")
    disabled = _names_from_env("ZOO_DISABLE_PLUGINS") or set()
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        dist_name = dist.name if dist else None
        if wanted is not None and dist_name not in wanted:
            continue
        if {entry_point.name, dist_name} & disabled or pm.has_plugin(entry_point.name):
            continue
        info = PluginInfo(
            entry_point.name, dist.version if dist else "?", builtin=False, distribution=dist_name
        )
        _plugins[entry_point.name] = info
        try:
            plugin = entry_point.load()
        except Exception as error:  # a broken plugin must not break zoo
            info.error = describe_exception(error)
            continue
        info.error = api_version_mismatch(plugin)
        if info.error is None:
            pm.register(plugin, name=entry_point.name)
    return _plugins


def api_version_mismatch(plugin) -> str | None:
    """Why a plugin written for another plugin API cannot be registered; None if it can.

    A plugin declares the API it was written for as ``ZOO_API_VERSION`` in its module; one
    that declares none is taken to follow the current one.
    """
    declared = getattr(plugin, "ZOO_API_VERSION", API_VERSION)
    if declared == API_VERSION:
        return None
    return (
        f"written for zoo plugin API {declared}, but this zoo ({__version__}) has API "
        f"{API_VERSION}; install a version of the plugin made for it"
    )


def hooks_implemented(plugin_name: str) -> list[str]:
    """The hook names a registered plugin implements."""
    plugin = pm.get_plugin(plugin_name)
    if plugin is None:
        return []
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
