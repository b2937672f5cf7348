"""The plugin manager: the built-in plugins first, then every installed ``zoo`` entry point.

Built-ins are ordinary plugin modules, registered exactly as a third party's are. A third-party
plugin is imported and registered through ``zoo.plugin.guard``: one that fails (an exception of
any kind, a hook whose arguments differ from zoo's, output on stdout) is recorded, not raised,
and zoo keeps working without it.

Environment:
    ZOO_LOAD_PLUGINS     comma-separated distribution names to load (empty: built-ins only);
                         unset loads every installed plugin.
    ZOO_DISABLE_PLUGINS  comma-separated plugin (entry point) or distribution names to skip.
"""

from __future__ import annotations

import difflib
import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from zoo.base.version import API_VERSION, __version__
from zoo.plugin import hookspecs
from zoo.plugin.guard import PluginFailed, call_plugin

DEFAULT_PLUGINS = (
    "zoo.plugins.preprocessors",
    "zoo.plugins.keras_applications",
    "zoo.plugins.keras_backend",
    "zoo.plugins.onnx_backend",
    "zoo.plugins.openvino_backend",
    "zoo.plugins.opencv_backend",
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
    unknown_hooks: list[str] = field(default_factory=list)
    """Its hook implementations zoo has no hook for, each with the nearest real one."""


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
            _load_and_register(entry_point)
        except PluginFailed as failure:  # a broken plugin must not break zoo
            info.error = str(failure)
    _find_unknown_hooks()
    return _plugins


def _load_and_register(entry_point: metadata.EntryPoint) -> None:
    plugin = call_plugin(entry_point.name, "loading", entry_point.load)
    if mismatch := api_version_mismatch(plugin):
        raise PluginFailed(mismatch)
    try:
        pm.register(plugin, entry_point.name)
    except pluggy.PluginValidationError as error:  # e.g. register_models(registrar)
        if pm.has_plugin(entry_point.name):  # pluggy before 1.6 kept the hooks checked so far
            pm.unregister(name=entry_point.name)
        details = str(error).splitlines()[1:]
        raise PluginFailed(f"its hooks do not match zoo's: {'; '.join(details)}") from None


def _find_unknown_hooks() -> None:
    """Name each plugin's hook implementations that match no zoo hook (a misspelling such as
    ``register_model``): pluggy never calls them, so the plugin silently provides nothing."""
    try:
        pm.check_pending()
        return
    except pluggy.PluginValidationError:
        pass
    real = [name for name in dir(hookspecs) if name.startswith("register_")]
    for info in _plugins.values():
        plugin = pm.get_plugin(info.name)
        callers = pm.get_hookcallers(plugin) if plugin is not None else None
        for caller in callers or []:
            if not caller.has_spec():
                nearest = difflib.get_close_matches(caller.name, real, n=1)
                hint = f" (did you mean {nearest[0]!r}?)" if nearest else ""
                info.unknown_hooks.append(f"{caller.name!r} is not a zoo hook{hint}")


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
    """The zoo hooks a registered plugin implements (a misspelled one is not among them)."""
    plugin = pm.get_plugin(plugin_name)
    if plugin is None:
        return []
    return sorted(c.name for c in pm.get_hookcallers(plugin) or [] if c.has_spec())
