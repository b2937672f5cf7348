"""The registry: every model, preprocessor, backend and exporter the plugins registered.

Each plugin's hook is called on its own (through ``zoo.plugin.guard``) with a ``register``
callback that knows which plugin is calling, so a conflict names both plugins, and a plugin
that fails in a hook (raises, exits, prints to stdout) loses its own registrations and no one
else's. Problems are collected as one-line messages (``Registry.problems``) and emitted once
as ``PluginWarning``.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

from zoo.base.errors import UnknownModel, UnknownName
from zoo.model.input_config import InputConfig
from zoo.model.labels import resolve_labels
from zoo.model.spec import Backend, ExporterSpec, ModelSpec, PreprocessSpec
from zoo.plugin import manager as plugin_manager
from zoo.plugin.guard import PluginFailed, call_plugin


class PluginWarning(UserWarning):
    """A plugin could not be loaded, or something it registered was rejected."""


# kind -> (hook name, the type a registration must be)
KINDS: dict[str, tuple[str, type]] = {
    "preprocessor": ("register_preprocessors", PreprocessSpec),
    "model": ("register_models", ModelSpec),
    "backend": ("register_backends", Backend),
    "exporter": ("register_exporters", ExporterSpec),
}


@dataclass
class Registry:
    preprocessors: dict[str, PreprocessSpec] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    backends: dict[str, Backend] = field(default_factory=dict)
    exporters: dict[str, ExporterSpec] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    """alias -> model name"""
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, name or alias) -> the plugin that registered it"""
    problems: list[str] = field(default_factory=list)

    def table(self, kind: str) -> dict[str, Any]:
        return getattr(self, f"{kind}s")

    def add(self, kind: str, item: Any, plugin: str) -> None:
        hook, expected = KINDS[kind]
        if isinstance(item, type):
            raise TypeError(
                f"{hook} expects a {expected.__name__} instance, not the class "
                f"{item.__name__}: register({item.__name__}())"
            )
        if not isinstance(item, expected):
            raise TypeError(f"{hook} expects {expected.__name__}, got {type(item).__name__}")
        names = [item.name, *getattr(item, "aliases", ())]
        for name in names:
            owner = self.owners.get((kind, name))
            if owner is not None:
                raise DuplicateRegistration(
                    f"plugin {plugin!r} registers {kind} {name!r}, which plugin {owner!r} "
                    f"already registers; {plugin!r}'s is ignored "
                    f"(to use the other, set ZOO_DISABLE_PLUGINS={owner})"
                )
        self.table(kind)[item.name] = item
        for name in names:
            self.owners[(kind, name)] = plugin
            if name != item.name:
                self.aliases[name] = item.name

    def remove_plugin(self, plugin: str) -> None:
        """Forget everything ``plugin`` registered."""
        for (kind, name), owner in list(self.owners.items()):
            if owner != plugin:
                continue
            del self.owners[(kind, name)]
            self.table(kind).pop(name, None)
            self.aliases.pop(name, None)

    def contributions(self, plugin: str) -> dict[str, list[str]]:
        """What ``plugin`` registered, by kind (``models``, ``backends``...), aliases left out."""
        found: dict[str, list[str]] = {f"{kind}s": [] for kind in KINDS}
        for (kind, name), owner in self.owners.items():
            if owner == plugin and name in self.table(kind):
                found[f"{kind}s"].append(name)
        return found

    def model(self, name: str) -> ModelSpec:
        key = name.lower()
        key = self.aliases.get(key, key)
        if key not in self.models:
            raise UnknownModel(name, {**{m: m for m in self.models}, **self.aliases})
        return self.models[key]

    def preprocessor(self, spec: ModelSpec) -> PreprocessSpec:
        if isinstance(spec.preprocess, PreprocessSpec):
            return spec.preprocess
        return self._lookup("preprocessor", spec.preprocess)

    def input_config(self, spec: ModelSpec) -> InputConfig:
        """``spec``'s input settings with its preprocessing and labels looked up. A setting
        the spec declares under its ``InputConfig`` name is taken as it is, so that a new one
        needs no change here."""
        looked_up = {
            "size": tuple(spec.input_size),
            "preprocess": self.preprocessor(spec),
            "labels": resolve_labels(spec.labels),
        }
        as_declared = {
            f.name: getattr(spec, f.name)
            for f in dataclasses.fields(InputConfig)
            if f.name not in looked_up and hasattr(spec, f.name)
        }
        return InputConfig(**looked_up, **as_declared)

    def backend(self, name: str) -> Backend:
        return self._lookup("backend", name)

    def exporter(self, name: str) -> ExporterSpec:
        return self._lookup("exporter", name)

    def _lookup(self, kind: str, name: str) -> Any:
        table = self.table(kind)
        if name not in table:
            raise UnknownName(kind, name, list(table))
        return table[name]


class DuplicateRegistration(ValueError):
    """Two plugins registered the same name."""


def build_registry(pm=plugin_manager.pm) -> Registry:
    """Call every plugin's register hooks, one plugin at a time, and collect the results."""
    registry = Registry()
    for info in plugin_manager.load_plugins().values():
        if info.error:
            registry.problems.append(f"plugin {info.name!r} failed to load: {info.error}")
        for unknown in info.unknown_hooks:
            registry.problems.append(f"plugin {info.name!r}: {unknown}; it is never called")
    failed: set[str] = set()
    for kind, (hook_name, _) in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name not in failed:
                _call_register_hook(registry, kind, hook_name, impl, failed)
    _drop_models_without_preprocessor(registry)
    return registry


def _call_register_hook(registry: Registry, kind: str, hook_name: str, impl, failed: set) -> None:
    plugin = impl.plugin_name

    def register(item: Any) -> None:
        try:
            registry.add(kind, item, plugin)
        except DuplicateRegistration as error:
            registry.problems.append(str(error))
        except (TypeError, ValueError, AttributeError) as error:
            registry.problems.append(f"plugin {plugin!r}: bad registration in {hook_name}: {error}")

    try:
        call_plugin(plugin, hook_name, lambda: impl.function(register))
    except PluginFailed as failure:  # a plugin's bug must not break zoo
        registry.problems.append(f"plugin {plugin!r} failed in {hook_name}: {failure}")
        registry.remove_plugin(plugin)
        failed.add(plugin)


def _drop_models_without_preprocessor(registry: Registry) -> None:
    for name, spec in list(registry.models.items()):
        if isinstance(spec.preprocess, str) and spec.preprocess not in registry.preprocessors:
            plugin = registry.owners[("model", name)]
            registry.problems.append(
                f"plugin {plugin!r}: model {name!r} needs preprocessor {spec.preprocess!r}, "
                "which no plugin registers; the model is skipped"
            )
            del registry.models[name]
            for alias in spec.aliases:
                registry.aliases.pop(alias, None)


_registry: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The registry, built on first use; its problems are emitted once as ``PluginWarning``."""
    global _registry
    if _registry is None or refresh:
        _registry = build_registry()
        for problem in _registry.problems:
            warnings.warn(problem, PluginWarning, stacklevel=2)
    return _registry
