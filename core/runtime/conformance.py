"""The conformance check a plugin author runs in their own CI.

Every model the plugin registers must: have labels; build and predict on Keras with as many
outputs as labels; export to ONNX and pass zoo's verification against Keras; carry its
preprocessing and labels through the file's metadata unchanged; and predict from the .onnx
file the same top-5 as on Keras.

    zoo check-plugin zoo-pets                      # the command
    from zoo.runtime.conformance import check_plugin           # or from pytest:
    assert check_plugin("zoo-pets").passed
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from zoo.base.errors import ZooError, describe_exception
from zoo.model.labels import resolve_labels
from zoo.model.spec import ExportOptions, ModelSpec
from zoo.plugin.manager import load_plugins, pm
from zoo.plugin.registry import get_registry
from zoo.runtime.api import load
from zoo.runtime.model import Model
from zoo.runtime.onnx_file import load_onnx
from zoo.runtime.samples import sample_images


@dataclass
class Check:
    model: str
    step: str
    ok: bool
    detail: str = ""


@dataclass
class PluginReport:
    plugin: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def failures(self) -> list[Check]:
        """The failed check of each failing model (a failed step ends a model's checks)."""
        return [check for check in self.checks if not check.ok]

    def to_dict(self) -> dict:
        return {
            "plugin": self.plugin,
            "passed": self.passed,
            "checks": [asdict(c) for c in self.checks],
        }


def check_plugin(name: str, weights: str = "none", models: Sequence[str] = ()) -> PluginReport:
    """Check every model the plugin ``name`` (entry point or distribution name) registers, or
    only ``models`` (names or aliases of its models).

    ``weights`` is passed to every model: ``none`` (default: random init, works offline),
    ``imagenet`` (the published weights) or a file.
    """
    plugin = _plugin_name(name)
    report = PluginReport(plugin)
    registered = get_registry().contributions(plugin)["models"]
    info = load_plugins().get(plugin)
    if info is not None and info.unknown_hooks:
        report.checks.append(Check("-", "hooks", False, "; ".join(info.unknown_hooks)))
    if models:
        wanted = [get_registry().model(model).name for model in models]
        foreign = [model for model in wanted if model not in registered]
        if foreign:
            raise ZooError(
                f"plugin {plugin!r} does not register {', '.join(map(repr, foreign))}; "
                f"it registers {', '.join(map(repr, registered)) or 'no model'}"
            )
        registered = list(dict.fromkeys(wanted))
    models = registered
    if not models:
        report.checks.append(Check("-", "registers models", False, "it registers no model"))
    with tempfile.TemporaryDirectory(prefix="zoo-check-") as folder:
        for model in models:
            _check_model(get_registry().models[model], weights, Path(folder), report)
    return report


def _plugin_name(name: str) -> str:
    """The registered plugin's name, from its entry point or distribution name."""
    for info in load_plugins().values():
        if name in (info.name, info.distribution):
            if info.error:
                raise ZooError(f"plugin {info.name!r} failed to load: {info.error}")
            return info.name
    if pm.has_plugin(name):  # registered in-process, e.g. by the author's own tests
        return name
    raise ZooError(f"no plugin or distribution named {name!r} is installed; see 'zoo plugins'")


def _check_model(spec: ModelSpec, weights: str, folder: Path, report: PluginReport) -> None:
    """Run the steps in order; a failed step ends this model's checks."""
    photo = sample_images()[0]
    state: dict = {}

    def labels() -> str:
        state["labels"] = resolve_labels(spec.labels)
        return f"{len(state['labels'])} labels"

    def keras() -> str:
        state["keras"] = load(spec.name, backend="keras", weights=weights)
        state["keras_top"] = state["keras"].predict(photo)  # checks outputs == labels
        return f"top-1 on {photo.name}: {state['keras_top'][0].label}"

    def export() -> str:
        exporter = get_registry().exporter("onnx")
        state["onnx_path"] = folder / f"{spec.name}.onnx"
        result = exporter.export(spec, state["onnx_path"], ExportOptions(weights=weights))
        return result.report.summary()

    def metadata() -> str:
        exported: Model = load_onnx(state["onnx_path"], provider="cpu")
        state["onnx"] = exported
        expected = get_registry().preprocessor(spec)
        if exported.preprocessing != expected:
            raise ZooError(
                f"preprocessing in the ONNX metadata {exported.preprocessing.to_dict()} "
                f"differs from the model's {expected.to_dict()}"
            )
        if list(exported.labels) != list(state["labels"]):
            raise ZooError("the labels in the ONNX metadata differ from the model's")
        return "preprocessing and labels round-trip"

    def onnx_predicts() -> str:
        onnx_top = state["onnx"].predict(photo)
        keras_top = state["keras_top"]
        if [p.index for p in onnx_top] != [p.index for p in keras_top]:
            raise ZooError(
                f"top-5 on {photo.name}: Keras {[p.label for p in keras_top]}, "
                f"ONNX {[p.label for p in onnx_top]}"
            )
        return "same top-5 as Keras"

    steps: list[tuple[str, Callable[[], str]]] = [
        ("labels", labels),
        ("builds and predicts on keras", keras),
        ("exports to ONNX and verifies", export),
        ("metadata round-trips", metadata),
        ("predicts from the .onnx", onnx_predicts),
    ]
    for step, run in steps:
        try:
            report.checks.append(Check(spec.name, step, True, run()))
        except Exception as error:  # a plugin's failure is the finding, not a crash
            detail = str(error) if isinstance(error, ZooError) else describe_exception(error)
            report.checks.append(Check(spec.name, step, False, detail))
            return
