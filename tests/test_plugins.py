"""Plugins register through the hooks exactly as a third party's would; conflicts and broken
plugins are reported, never fatal."""

from __future__ import annotations

import json

import pytest

import zoo
from zoo.plugin.registry import KINDS, PluginWarning, get_registry

from .conftest import run_zoo
from .plugin_packages import fake_distribution

BUILTIN_MODELS = {"vgg16", "resnet50", "inception_v3", "mobilenet"}


def tiny_model(name, **overrides):
    def build(weights):
        raise AssertionError("these tests never build the model")

    fields = {"name": name, "build": build, "input_size": (32, 32), "preprocess": "tf"}
    return zoo.ModelSpec(**{**fields, "labels": ["cat", "dog"], **overrides})


def test_builtins_register_through_the_hooks():
    registry = get_registry(refresh=True)
    assert set(registry.models) >= BUILTIN_MODELS
    for name in BUILTIN_MODELS:
        assert registry.owners[("model", name)] == "zoo.plugins.keras_applications"
    assert {"caffe", "tf", "torch", "none"} <= set(registry.preprocessors)
    assert "keras" in registry.backends
    assert registry.model("InceptionV3").name == "inception_v3"  # alias, any case


def test_a_plugin_object_registers_a_model(install_plugin):
    class ThirdParty:
        @zoo.hookimpl
        def register_models(self, register):
            register(tiny_model("pets", aliases=("pet-classifier",)))

        @zoo.hookimpl
        def register_preprocessors(self, register):
            register(zoo.PreprocessSpec("half", divisor=2.0))

    before = set(get_registry(refresh=True).models)
    install_plugin(ThirdParty(), "zoo-pets")
    registry = get_registry(refresh=True)
    assert registry.model("pet-classifier").name == "pets"
    assert registry.owners[("model", "pets")] == "zoo-pets"
    assert registry.preprocessors["half"].divisor == 2.0
    assert set(registry.models) == before | {"pets"}


def test_a_duplicate_model_name_names_both_plugins(install_plugin):
    class Impostor:
        @zoo.hookimpl
        def register_models(self, register):
            register(tiny_model("resnet50"))
            register(tiny_model("fine"))

    install_plugin(Impostor(), "zoo-impostor")
    with pytest.warns(PluginWarning) as caught:
        registry = get_registry(refresh=True)
    [message] = [str(w.message) for w in caught]
    assert "'zoo-impostor'" in message and "'zoo.plugins.keras_applications'" in message
    assert "'resnet50'" in message and "ZOO_DISABLE_PLUGINS" in message
    assert registry.owners[("model", "resnet50")] == "zoo.plugins.keras_applications"
    assert "fine" in registry.models  # the plugin's other models still count


def test_a_duplicate_alias_is_rejected(install_plugin):
    class Clash:
        @zoo.hookimpl
        def register_models(self, register):
            register(tiny_model("other", aliases=("resnet",)))

    install_plugin(Clash(), "zoo-clash")
    with pytest.warns(PluginWarning, match="'resnet'.*'zoo.plugins.keras_applications'"):
        registry = get_registry(refresh=True)
    assert "other" not in registry.models
    assert registry.model("resnet").name == "resnet50"


REGISTER_HOOKS = (
    "register_models",
    "register_preprocessors",
    "register_backends",
    "register_exporters",
)


def raising_plugin(hook: str):
    """A plugin object whose ``hook`` raises, after registering nothing."""

    def broken(register):
        raise RuntimeError("boom\nsecond line")

    return type("Broken", (), {hook: staticmethod(zoo.hookimpl(broken))})()


@pytest.mark.parametrize("hook", REGISTER_HOOKS)
def test_a_plugin_raising_in_a_hook_loses_only_its_own_registrations(install_plugin, hook):
    registry = get_registry(refresh=True)
    before = {kind: set(registry.table(kind)) for kind in KINDS}
    install_plugin(raising_plugin(hook), "zoo-broken")
    with pytest.warns(PluginWarning) as caught:
        registry = get_registry(refresh=True)
    [message] = [str(w.message) for w in caught]
    assert message == f"plugin 'zoo-broken' failed in {hook}: RuntimeError: boom"
    assert {kind: set(registry.table(kind)) for kind in KINDS} == before


def test_a_plugin_raising_in_register_commands_leaves_the_cli_working(install_plugin, capsys):
    from zoo.cli.main import main

    def broken(cli):
        raise RuntimeError("no commands today")

    plugin = type("Broken", (), {"register_commands": staticmethod(zoo.hookimpl(broken))})()
    install_plugin(plugin, "zoo-broken-cli")
    assert main(["list"]) == 0
    captured = capsys.readouterr()
    assert "mobilenet" in captured.out
    assert captured.err == (
        "zoo: warning: plugin 'zoo-broken-cli' failed in register_commands: "
        "RuntimeError: no commands today\n"
    )


def test_a_malformed_registration_is_reported(install_plugin):
    class Sloppy:
        @zoo.hookimpl
        def register_models(self, register):
            register({"name": "dict-model"})

    before = set(get_registry(refresh=True).models)
    install_plugin(Sloppy(), "zoo-sloppy")
    with pytest.warns(PluginWarning, match="zoo-sloppy.*expects ModelSpec, got dict"):
        registry = get_registry(refresh=True)
    assert set(registry.models) == before


def test_a_model_needing_an_unknown_preprocessor_is_skipped(install_plugin):
    class Unknown:
        @zoo.hookimpl
        def register_models(self, register):
            register(tiny_model("odd", preprocess="no-such-mode"))

    install_plugin(Unknown(), "zoo-unknown")
    with pytest.warns(PluginWarning, match="'odd' needs preprocessor 'no-such-mode'"):
        registry = get_registry(refresh=True)
    assert "odd" not in registry.models


def test_specs_reject_nonsense():
    with pytest.raises(ValueError, match="lowercase"):
        tiny_model("Big Model")
    with pytest.raises(ValueError, match="interpolation must be one of nearest, bilinear"):
        zoo.ModelSpec("m", build=lambda w: None, input_size=(8, 8), preprocess="tf",
                      interpolation="cubic")  # fmt: skip
    with pytest.raises(ValueError, match="input_size"):
        tiny_model("flat", input_size=(0, 224))
    with pytest.raises(ValueError, match="channel_order"):
        zoo.PreprocessSpec("x", channel_order="GBR")
    with pytest.raises(ValueError, match="non-zero"):
        zoo.PreprocessSpec("x", std=(1.0, 0.0, 1.0))


def test_unknown_model_suggests_close_names():
    with pytest.raises(zoo.ZooError, match=r"did you mean 'resnet50'\?$"):
        get_registry().model("resnt")
    with pytest.raises(zoo.ZooError, match="see 'zoo list'"):
        get_registry().model("xyzzy")


def test_weights_file_names_come_from_keras_urls():
    registry = get_registry()
    assert registry.models["resnet50"].weights.file_name == (
        "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    )
    assert registry.models["mobilenet"].weights.file_hash is None


@pytest.fixture
def site_with_plugins(tmp_path):
    site = tmp_path / "site"
    fake_distribution(site, "zoo-broken", "zoo_broken", "import no_such_module_anywhere\n")
    fake_distribution(
        site,
        "zoo-extra",
        "zoo_extra",
        "import zoo\n"
        "@zoo.hookimpl\n"
        "def register_models(register):\n"
        "    register(zoo.ModelSpec(name='extra', build=print, input_size=(8, 8),\n"
        "                           preprocess='tf', labels=['a', 'b']))\n",
    )
    # Only these two: other plugins installed here (the example's) must not change the outcome.
    return {"PYTHONPATH": str(site), "ZOO_LOAD_PLUGINS": "zoo-broken,zoo-extra"}


@pytest.mark.slow
def test_entry_point_plugins_load_and_a_broken_one_is_one_warning(site_with_plugins):
    result = run_zoo("list", env=site_with_plugins)
    assert result.returncode == 0
    assert "extra" in result.stdout and "mobilenet" in result.stdout
    assert result.stderr == (
        "zoo: warning: plugin 'zoo_broken' failed to load: "
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'\n"
    )
    plugins = run_zoo("plugins", "--json", env=site_with_plugins)
    rows = {row["name"]: row for row in json.loads(plugins.stdout)}
    assert set(rows) == {"zoo_extra", "zoo_broken"}
    assert rows["zoo_extra"]["version"] == "1.2.3"
    assert rows["zoo_extra"]["distribution"] == "zoo-extra"
    assert rows["zoo_extra"]["hooks"] == ["register_models"]
    assert rows["zoo_extra"]["models"] == ["extra"]
    assert rows["zoo_broken"]["error"].startswith("ModuleNotFoundError")


@pytest.mark.slow
def test_plugins_can_be_disabled_or_limited(site_with_plugins):
    disabled = run_zoo("list", env={**site_with_plugins, "ZOO_DISABLE_PLUGINS": "zoo-broken"})
    assert disabled.stderr == ""
    assert "extra" in disabled.stdout
    only = run_zoo("list", "--json", env={**site_with_plugins, "ZOO_LOAD_PLUGINS": "zoo-extra"})
    assert only.stderr == ""
    assert {row["name"] for row in json.loads(only.stdout)} == BUILTIN_MODELS | {"extra"}
    builtins = run_zoo("list", "--json", env={**site_with_plugins, "ZOO_LOAD_PLUGINS": ""})
    assert {row["name"] for row in json.loads(builtins.stdout)} == BUILTIN_MODELS


THIRD_PARTY_RUNTIME = """
import numpy as np
import zoo


class Mean(zoo.Runner):
    def __init__(self, threads):
        self.threads = threads

    def __call__(self, batch):
        brightness = batch.mean(axis=(1, 2, 3))  # preprocessed: -1 (black) .. 1 (white)
        light = (brightness + 1) / 2
        return np.stack([1 - light, light], axis=1)


class MeanBackend(zoo.Backend):
    name = "mean"
    description = "dark or light, by the mean pixel"

    def load(self, spec, weights, options):
        if options.provider != "auto":
            raise zoo.ZooError(f"the mean backend has no provider {options.provider!r}")
        return Mean(options.threads)


def export_text(spec, output, options):
    output.write_text(f"{spec.name} opset={options.opset} top_k={options.top_k}\\n")

    class Result:
        def to_dict(self):
            return {"path": str(output)}

        def summary(self):
            return f"wrote {output}"

    return Result()


@zoo.hookimpl
def register_backends(register):
    register(MeanBackend())


@zoo.hookimpl
def register_exporters(register):
    register(zoo.ExporterSpec("text", export=export_text))


@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(name="lightness", build=print, input_size=(8, 8), preprocess="tf",
                           labels=["dark", "light"]))
"""


@pytest.fixture
def site_with_runtime(tmp_path):
    site = tmp_path / "site"
    fake_distribution(site, "zoo-mean", "zoo_mean", THIRD_PARTY_RUNTIME)
    return {"PYTHONPATH": str(site), "ZOO_LOAD_PLUGINS": "zoo-mean"}


@pytest.mark.slow
def test_a_third_party_backend_gets_the_load_options(site_with_runtime, tmp_path):
    from PIL import Image

    white = tmp_path / "white.png"
    Image.new("RGB", (20, 20), "white").save(white)
    args = ("predict", "lightness", str(white), "--backend", "mean", "--weights", "none")
    result = run_zoo(*args, "--threads", "3", "--json", env=site_with_runtime)
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["backend"] == "mean"
    assert record["top"][0]["label"] == "light" and record["top"][0]["score"] == 1.0
    refused = run_zoo(*args, "--provider", "cuda", env=site_with_runtime)
    assert refused.returncode == 1
    assert refused.stderr == "zoo: the mean backend has no provider 'cuda'\n"


@pytest.mark.slow
def test_a_third_party_exporter_gets_the_export_options(site_with_runtime, tmp_path):
    output = tmp_path / "lightness.txt"
    args = ("export", "lightness", "--format", "text", "-o", str(output), "--opset", "13")
    result = run_zoo(*args, "--top-k", "1", env=site_with_runtime)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {output}\n"
    assert output.read_text() == "lightness opset=13 top_k=1\n"


def test_a_plugin_for_another_api_version_is_refused_in_one_line(tmp_path):
    site = tmp_path / "site"
    source = (
        "import zoo\nZOO_API_VERSION = 1\n@zoo.hookimpl\ndef register_models(register):\n    pass\n"
    )
    fake_distribution(site, "zoo-old", "zoo_old", source)
    result = run_zoo("list", env={"PYTHONPATH": str(site), "ZOO_LOAD_PLUGINS": "zoo-old"})
    assert result.returncode == 0
    assert result.stderr == (
        f"zoo: warning: plugin 'zoo_old' failed to load: written for zoo plugin API 1, but this "
        f"zoo ({zoo.__version__}) has API {zoo.API_VERSION}; install a version of the plugin "
        "made for it\n"
    )


def test_a_backend_class_instead_of_an_instance_is_reported(install_plugin):
    class Runtime(zoo.Backend):
        name = "runtime"

    class Plugin:
        @zoo.hookimpl
        def register_backends(self, register):
            register(Runtime)

    install_plugin(Plugin(), "zoo-class")
    with pytest.warns(PluginWarning, match=r"not the class Runtime: register\(Runtime\(\)\)"):
        registry = get_registry(refresh=True)
    assert "runtime" not in registry.backends
