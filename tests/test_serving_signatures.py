"""SavedModel folders without Keras metadata (what Keras 3's ``model.export``,
``tf.saved_model.save``, TensorFlow 1's ``saved_model.Builder`` and TF Hub write), made here,
seeded and small: run as their serving signature (or a TF Hub-style ``__call__`` where there is
none), exported through tf2onnx and verified against it, in every form zoo takes (softmax,
logits, grayscale, uint8 input, one sigmoid unit, any size, a TensorFlow 1 graph), and each
folder zoo cannot run refused in one line with nothing written."""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from .conftest import fresh_venv_seeing_this_one, run_zoo

SAMPLES = Path(__file__).resolve().parent.parent / "core" / "data" / "samples"
PHOTO = SAMPLES / "cat.jpg"

pytestmark = pytest.mark.tensorflow


def _module(signature: dict, compute, variables: dict):
    """A ``tf.Module`` holding ``variables``, its ``serve`` function taking ``signature``
    (name -> TensorSpec, in order) and returning ``compute(module, *inputs)``."""
    import tensorflow as tf

    module = tf.Module()
    for name, value in variables.items():
        setattr(module, name, tf.Variable(value))
    specs = [tf.TensorSpec(spec.shape, spec.dtype, name=name) for name, spec in signature.items()]
    module.serve = tf.function(lambda *inputs: compute(module, *inputs), input_signature=specs)
    return module


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Each form of SavedModel, by name, in a folder of the test's own."""
    import keras
    import tensorflow as tf

    root = tmp_path_factory.mktemp("signatures")
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    made = {name: root / name for name in ("exported", "binary", "gray_logits", "uint8")}
    made.update((name, root / name) for name in ("reads_file", "no_signature", "two_inputs"))
    made.update((name, root / name) for name in ("tf1_builder", "any_size", "hub_call"))

    softmax = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    softmax.export(made["exported"], verbose=False)
    any_size = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ]
    )
    any_size.export(made["any_size"], verbose=False)
    binary = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(1, "sigmoid")]
    )
    binary.export(made["binary"], verbose=False)

    def save(name, signature, compute, **variables):
        module = _module(signature, compute, variables)
        tf.saved_model.save(module, made[name], signatures={"serving_default": module.serve})

    gray = tf.TensorSpec([None, 12, 12, 1], tf.float32)
    weights = rng.normal(size=(144, 4)).astype(np.float32)

    def logits(module, x):
        return {"logits": tf.reshape(x, [-1, 144]) @ module.w}

    save("gray_logits", {"pixels": gray}, logits, w=weights)
    save(
        "uint8",
        {"image_bytes": tf.TensorSpec([None, 8, 8, 3], tf.uint8)},
        lambda module, x: {"scores": tf.reshape(tf.cast(x, tf.float32), [-1, 192]) @ module.w},
        w=rng.normal(size=(192, 3)).astype(np.float32) / 100,
    )
    save(
        "reads_file",
        {"pixels": gray},
        lambda module, x: {
            "logits": logits(module, x)["logits"]
            + tf.cast(tf.strings.length(tf.io.read_file("/etc/hostname")), tf.float32)
        },
        w=weights,
    )
    save(
        "two_inputs",
        {"a": gray, "b": gray},
        lambda module, a, b: logits(module, a + b),
        w=weights,
    )
    _save_tf1(made["tf1_builder"], rng.normal(size=(192, 4)).astype(np.float32))
    _save_hub_style(made["hub_call"], rng.normal(size=(192, 4)).astype(np.float32))
    traced = tf.Module()  # a function traced once, with no input signature: no signature
    traced.w = tf.Variable(weights)
    traced.f = tf.function(lambda x: logits(traced, x))
    traced.f(tf.zeros([1, 12, 12, 1]))
    tf.saved_model.save(traced, made["no_signature"])
    return made


def _save_tf1(folder: Path, weights: np.ndarray) -> None:
    """A TensorFlow 1 SavedModel (``saved_model.Builder``, a graph and a session): softmax of
    an 8x8 RGB image's pixels times ``weights``."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        images = tf1.placeholder(tf.float32, [None, 8, 8, 3], name="images")
        w = tf1.get_variable("w", initializer=weights)
        probabilities = tf.nn.softmax(tf.matmul(tf.reshape(images, [-1, 192]), w))
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            builder = tf1.saved_model.Builder(str(folder))
            signature = tf1.saved_model.predict_signature_def(
                {"images": images}, {"probabilities": probabilities}
            )
            builder.add_meta_graph_and_variables(
                session, ["serve"], signature_def_map={"serving_default": signature}
            )
            builder.save()


def _save_hub_style(folder: Path, weights: np.ndarray) -> None:
    """What TF Hub's TF2 SavedModels are: an object whose ``__call__`` (traced with
    ``training`` on and off, no input signature) is the model, and no signature at all."""
    import tensorflow as tf

    class Classifier(tf.Module):
        def __init__(self):
            self.w = tf.Variable(weights)

        @tf.function(autograph=False)
        def __call__(self, x, training=False):
            logits = tf.reshape(x, [-1, 192]) @ self.w
            return tf.nn.dropout(logits, 0.5) if training else logits

    module = Classifier()
    for training in (True, False):
        module.__call__.get_concrete_function(tf.TensorSpec([None, 8, 8, 3]), training)
    tf.saved_model.save(module, str(folder))
    assert not tf.saved_model.load(str(folder)).signatures  # what this form is


def _signature_outputs(folder: Path, x: np.ndarray) -> np.ndarray:
    """What TensorFlow's own serving signature gives, called directly."""
    import tensorflow as tf

    function = tf.saved_model.load(str(folder)).signatures["serving_default"]
    ((name, spec),) = function.structured_input_signature[1].items()
    ((_, outputs),) = function(**{name: tf.cast(x, spec.dtype)}).items()
    return outputs.numpy()


@pytest.mark.parametrize(
    "name, shape, activation",
    [
        ("exported", (16, 16, 3), "softmax"),
        ("gray_logits", (12, 12, 1), "linear"),
        ("uint8", (8, 8, 3), "linear"),
        ("binary", (8, 8, 3), "sigmoid"),
    ],
)
def test_the_model_computes_what_the_signature_does(folders, name, shape, activation):
    from zoo.sources.keras_file import describe_classifier
    from zoo.sources.saved_model import ServingSignature

    folder = folders[name]
    signature = ServingSignature.open(folder)
    assert signature.model.layers[-1].scores_activation == activation
    x = np.random.default_rng(1).integers(0, 256, (3, *shape)).astype(np.float32)
    expected = _signature_outputs(folder, x)
    graph = describe_classifier(signature.model, folder)
    ours = np.asarray(signature.build(str(folder))(x, training=False))
    if graph.binary:  # one sigmoid unit p, as scores [1 - p, p]
        np.testing.assert_allclose(ours, np.concatenate([1 - expected, expected], 1), atol=1e-6)
    else:
        np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize(
    "name, options, output",
    [
        ("exported", ["--preprocess", "none"], "probabilities"),
        ("gray_logits", ["--preprocess", "unit"], "logits"),
        ("uint8", ["--preprocess", "none"], "logits"),
        ("tf1_builder", ["--preprocess", "unit"], "probabilities"),
        ("any_size", ["--preprocess", "unit", "--input-size", "32x32"], "logits"),
        ("hub_call", ["--preprocess", "unit"], "logits"),
    ],
)
def test_exports_through_tf2onnx_verified_and_predicts_as_its_export(
    folders, zoo_here, tmp_path, name, options, output
):
    folder, onnx_file = folders[name], tmp_path / f"{name}.onnx"
    code, out, err = zoo_here("export", folder, *options, "-o", onnx_file, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["verified"] and result["converter"]["name"] == "tf2onnx"
    assert result["converter"]["unsupported_layers"] == ["ServingSignatureLayer"]
    code, out, err = zoo_here("predict", folder, PHOTO, *options, "--json")
    assert code == 0, err
    on_tensorflow = json.loads(out)[0]["top"]
    code, out, err = zoo_here("predict", onnx_file, PHOTO, "--json")
    assert code == 0, err
    on_onnx = json.loads(out)[0]["top"]
    assert [e["label"] for e in on_onnx] == [e["label"] for e in on_tensorflow]
    np.testing.assert_allclose(
        [e["score"] for e in on_onnx], [e["score"] for e in on_tensorflow], atol=1e-5
    )
    from zoo.plugin.registry import get_registry
    from zoo.sources.keras_file import KerasFileOptions
    from zoo.sources.model_file import keras_file_spec

    size = (32, 32) if "--input-size" in options else None
    stated = KerasFileOptions(preprocess=options[1], input_size=size)
    assert keras_file_spec(folder, stated, get_registry().preprocessors).output == output


def test_one_sigmoid_unit_is_two_classes_with_its_labels(folders, zoo_here, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    code, out, err = zoo_here(
        "predict", folders["binary"], PHOTO, "--preprocess", "unit", "--labels", labels, "--json"
    )
    assert code == 0, err
    top = json.loads(out)[0]["top"]
    assert sorted(e["label"] for e in top) == ["cat", "dog"]
    assert sum(e["score"] for e in top) == pytest.approx(1, abs=1e-6)


def test_zoo_import_and_package_keep_the_folder_and_run_it_by_name(folders, zoo_here, fresh_home):
    folder = folders["gray_logits"]
    code, out, err = zoo_here("import", folder, "--preprocess", "unit", "--name", "gray", "--json")
    assert code == 0, err
    kept = Path(json.loads(out)["path"]) / "model"
    assert (
        kept.is_dir()
        and (kept / "saved_model.pb").read_bytes() == (folder / "saved_model.pb").read_bytes()
    )
    from zoo.plugin.registry import get_registry

    get_registry(refresh=True)  # as a new process would read zoo's home
    code, out, err = zoo_here("predict", "gray", PHOTO, "--json")
    assert code == 0, err
    by_name = json.loads(out)[0]["top"]
    code, out, err = zoo_here("predict", folder, PHOTO, "--preprocess", "unit", "--json")
    assert code == 0, err
    assert by_name == json.loads(out)[0]["top"]

    code, out, err = zoo_here("package", "gray", "-o", fresh_home.parent / "pkg", "--json")
    assert code == 0, err
    python = fresh_venv_seeing_this_one(fresh_home.parent / "venv")
    package = json.loads(out)["path"]
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", package], check=True)
    env = {"ZOO_HOME": str(fresh_home.parent / "other-home")}  # the model from the package
    installed = run_zoo("predict", "gray", str(PHOTO), "--json", env=env, python=python)
    assert installed.returncode == 0, installed.stderr
    assert json.loads(installed.stdout)[0]["top"] == by_name


@pytest.mark.parametrize(
    "name, options, message",
    [
        (
            "reads_file",
            ["--preprocess", "unit"],
            "its graph runs TensorFlow ops that read or "
            "write files or call Python (ReadFile); zoo runs SavedModels that only compute",
        ),
        ("no_signature", ["--preprocess", "unit"], "a SavedModel with no serving signature"),
        (
            "two_inputs",
            ["--preprocess", "unit"],
            "its signature 'serving_default' takes 2 "
            "inputs (a, b); zoo takes models of one image input",
        ),
        (
            "any_size",
            ["--preprocess", "unit", "--input-size", "2x2"],
            "its serving signature fails on a 2x2 probe batch (InvalidArgumentError: ",
        ),
        (
            "exported",
            ["--preprocess", "none", "--weights", "none"],
            "--weights none: exported is a TensorFlow SavedModel, whose weights are inside it",
        ),
    ],
)
def test_a_folder_zoo_cannot_run_is_one_line_and_nothing_written(
    folders, zoo_here, tmp_path, name, options, message
):
    output = tmp_path / "out.onnx"
    code, _, err = zoo_here("export", folders[name], *options, "-o", output)
    assert code != 0 and message in err, err
    said = [line for line in err.splitlines() if "no --labels, so" not in line]
    assert len(said) == 1 and not output.exists()


def test_a_corrupt_saved_model_pb_is_one_line(zoo_here, tmp_path):
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\x0a\xff\xff\xff\xff garbage")
    code, _, err = zoo_here("predict", folder, PHOTO, "--preprocess", "unit")
    assert code != 0 and "saved_model.pb is not a SavedModel TensorFlow reads" in err, err
    assert err.count("\n") == 1


@pytest.mark.parametrize("base", ["exported", "nested_backbone"])
def test_training_without_a_feature_map_of_its_own_is_refused_in_one_line(
    folders, zoo_here, tmp_path, base
):
    """A SavedModel is one opaque function, and a Keras model whose backbone is nested as one
    layer (as Teachable Machine's are) shows no feature map of its own: both refused, where
    the input image used to be taken for the feature map and a head trained on its pooled
    pixels."""
    import keras

    for name, photos in {"a": ["cat", "parrot"], "b": ["sunflower", "chickadee"]}.items():
        (tmp_path / "data" / name).mkdir(parents=True)
        for photo in photos:
            (tmp_path / "data" / name / f"{photo}.jpg").write_bytes(
                (SAMPLES / f"{photo}.jpg").read_bytes()
            )
    model = folders.get(base)
    if model is None:
        backbone = keras.Sequential(
            [keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()]
        )
        inputs = keras.Input((16, 16, 3))
        outputs = keras.layers.Dense(2, activation="softmax")(backbone(inputs))
        model = tmp_path / f"{base}.keras"
        keras.Model(inputs, outputs).save(model)
    code, _, err = zoo_here(
        "train", model, tmp_path / "data", "--preprocess", "none", "-o", tmp_path / "trained"
    )
    assert code != 0 and f"{base}: no feature map to train a head on" in err, err
    assert not (tmp_path / "trained").exists()


@pytest.mark.real_weights
def test_a_real_mobilenet_exported_by_keras_predicts_as_zoo_s_mobilenet(
    mobilenet_weights, shared_images, zoo_here, tmp_path
):
    """ImageNet MobileNet with real weights, written by Keras 3's ``model.export`` (no Keras
    metadata): exported through tf2onnx and verified on the real photos, and the folder and its
    export give, photo by photo, the top-5 zoo's own ``mobilenet`` gives."""
    import keras

    folder = tmp_path / "mobilenet_saved_model"
    keras.applications.MobileNet(weights=str(mobilenet_weights)).export(folder, verbose=False)
    index = resources.files("zoo").joinpath("data/imagenet_class_index.json")
    index = json.loads(index.read_text())
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{index[str(i)][1]}\n" for i in range(len(index))))
    stated = ["--preprocess", "tf", "--labels", labels]
    onnx_file = tmp_path / "mobilenet.onnx"
    images = shared_images[0].parent
    code, out, err = zoo_here(
        "export", folder, *stated, "--images", images, "-o", onnx_file, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["converter"]["name"] == "tf2onnx"

    def top5(*args) -> list[list[str]]:
        code, out, err = zoo_here("predict", *args, *shared_images, "--json")
        assert code == 0, err
        return [[entry["label"] for entry in record["top"]] for record in json.loads(out)]

    zoo_s = top5("mobilenet", "--weights", mobilenet_weights)
    assert top5(folder, *stated) == zoo_s
    assert top5(onnx_file) == zoo_s
