"""A model the user names by its path, a Keras file or a TensorFlow SavedModel folder, as a
``ModelSpec``: what the model says (``zoo.sources.keras_file`` reads a Keras file,
``zoo.sources.saved_model`` a SavedModel folder: input size and channels, class count, softmax
or logits, whether it scales its own pixels) plus what the user says (``KerasFileOptions``:
labels, preprocessing, input size, a name).

TensorFlow and Keras are imported inside functions only.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from zoo.base.errors import ZooError
from zoo.base.progress import note
from zoo.model.labels import read_label_file
from zoo.model.preprocess_text import parse_preprocess
from zoo.model.spec import ModelSpec, WeightsSpec, check_model_name, input_size_problem
from zoo.sources import keras_rewrites, saved_model
from zoo.sources.keras_file import (
    KERAS_SUFFIXES,
    Classifier,
    KerasFile,
    KerasFileError,
    KerasFileOptions,
    describe_classifier,
    keras_complaint,
)
from zoo.sources.weights import in_place_path

DEFAULT_LABEL = "class_{}"
"""Labels when the user gives none: class_0, class_1..."""


def is_keras_file(reference: str) -> bool:
    """Whether a model reference names a Keras file (by its suffix; it may not exist) or a
    TensorFlow SavedModel folder (``zoo.sources.saved_model``)."""
    path = Path(str(reference))
    return path.suffix.lower() in KERAS_SUFFIXES or saved_model.is_saved_model(path)


def check_label_count(labels: tuple[str, ...], path: Path, classes: int, model_path: Path) -> None:
    """The labels read from ``path`` (``zoo.model.labels.read_label_file``) must be as many as
    the model's class scores."""
    if len(labels) != classes:
        raise KerasFileError(
            f"--labels {path} has {len(labels)} labels, but {model_path.name} outputs "
            f"{classes} class scores"
        )


def model_name(path: Path, options: KerasFileOptions) -> str:
    name = options.name if options.name is not None else path.stem.lower()
    if problem := check_model_name(name):
        how = "" if options.name is not None else f" (from the file name {path.name}); pass --name"
        raise KerasFileError(f"cannot name the model {problem}{how}")
    if name != name.lower():
        raise KerasFileError(f"--name {name!r}: model names are lowercase")
    return name


def keras_file_spec(path: Path, options: KerasFileOptions, preprocessors) -> ModelSpec:
    """``path`` as a ``ModelSpec``, checked and loaded once; ``preprocessors``: the registered
    preprocessors ``--preprocess`` may name or start from."""
    source = Path(path)
    name = model_name(source, options)
    stated = None
    if options.preprocess is not None:  # before Keras: a typo costs no load
        stated = parse_preprocess(options.preprocess, preprocessors)
    given = None if options.labels is None else read_label_file(options.labels)  # before Keras
    if options.input_size is not None and (problem := input_size_problem(options.input_size)):
        raise KerasFileError(f"--input-size {_size_text(options.input_size)}: {problem}")
    path, keras_file = _opened(source, options, stated is not None, preprocessors)
    if keras_file.rewrites:
        note(
            f"zoo: {name}: Keras refuses {path.name} as saved; loaded it after zoo's rewrites "
            f"{keras_rewrites.describe(keras_file.rewrites)}"
        )
    graph = keras_file.graph = describe_classifier(keras_file.model, path)
    size = _input_size(graph.size, options.input_size, path)
    if graph.size is None:
        check_takes_size(keras_file.model, size, graph)
    preprocess = _preprocessing(stated, graph, preprocessors, path)
    if given is not None:
        labels = teachable_machine_labels(given)
        check_label_count(labels, options.labels, graph.classes, path)
    else:
        labels = _labels_beside(source, name, graph.classes)
    rewritten = f", loaded after rewrites {', '.join(keras_file.rewrites)}"
    return ModelSpec(
        name=name,
        build=keras_file.build,
        input_size=size,
        preprocess=preprocess,
        labels=labels,
        weights=WeightsSpec(path.resolve().as_uri(), keras_file.sha256, path.name, in_place=True),
        description=_kind(source, path) + (rewritten if keras_file.rewrites else ""),
        output=graph.output,
        rewrites=keras_file.rewrites,
    )


def _opened(source: Path, options: KerasFileOptions, stated: bool, preprocessors):
    """(what zoo reads of ``source``, it checked and loaded): a Keras file; a Keras 2
    SavedModel's ``.h5`` where tf_keras is installed; any other SavedModel folder as its
    serving signature (refused before TensorFlow starts unless the preprocessing is
    ``stated``)."""
    if not saved_model.is_saved_model(source):
        return source, KerasFile.open(source, options)
    keras_2 = saved_model.has_keras_metadata(source)
    if keras_2 and saved_model.reads_keras_metadata():
        path = saved_model.as_keras_file(source)
        return path, KerasFile.open(path, options)
    if not stated:  # nothing in the folder says
        raise KerasFileError(
            f"{source}: a SavedModel's serving signature does not say how its pixels are "
            "made; pass --preprocess: none if its graph scales its own pixels, one of "
            f"{', '.join(sorted(set(preprocessors) - {'none'}))}, or the steps (e.g. "
            '"scale=1/255")' + (f"; or {KERAS_2_HINT}" if keras_2 else "")
        )
    signature = saved_model.ServingSignature.open(source, options.input_size)
    if keras_2:
        note(f"zoo: {source.name}: a Keras 2 SavedModel, run as its signature; {KERAS_2_HINT}")
    return source, signature


KERAS_2_HINT = (
    "pip install 'zoo[savedmodel]' (tf_keras) to read it as the Keras model it holds, "
    "preprocessing found in its graph"
)


def _kind(source: Path, path: Path) -> str:
    """What ``source`` is, ``path`` being what zoo read of it."""
    if not saved_model.is_saved_model(source):
        return f"Keras file {source.name}"
    if path != source:
        return f"Keras 2 SavedModel {source.name} (read with tf_keras)"
    return f"TensorFlow SavedModel {source.name} (its serving signature, exported with tf2onnx)"


def _preprocessing(stated, graph: Classifier, preprocessors, path: Path):
    """The registered name, or the ``PreprocessSpec`` (a stated one; a grayscale model's),
    that the model's pixels are made with."""
    if stated is None and not graph.preprocesses_itself:
        raise KerasFileError(
            f"{path}: its graph does not scale its own pixels (no Rescaling or Normalization "
            "first), so zoo cannot tell how to preprocess them; pass --preprocess, one of "
            f'{", ".join(sorted(preprocessors))}, or the steps (e.g. "scale=1/255,bgr")'
        )
    spec = stated or preprocessors["none"]
    if graph.channels == 1:
        if spec.channel_order == "BGR":
            raise KerasFileError(
                f"--preprocess {spec.name!r}: gives BGR, but {path.name} takes one channel "
                "(grayscale)"
            )
        try:
            spec = dataclasses.replace(spec, channel_order="L")
        except ValueError:
            raise KerasFileError(
                f"--preprocess {spec.name!r}: gives a mean or std per channel, but "
                f"{path.name} takes one channel (grayscale)"
            ) from None
    return spec.name if preprocessors.get(spec.name) == spec else spec


TEACHABLE_MACHINE_LABEL = re.compile(r"(\d+) (.+)")


def teachable_machine_labels(labels: tuple[str, ...]) -> tuple[str, ...]:
    """Teachable Machine's ``labels.txt`` (``0 cheetah``, ``1 jaguar``: each line its class
    index, a space, the name) as the names alone; any other labels as they are."""
    found = [TEACHABLE_MACHINE_LABEL.fullmatch(label) for label in labels]
    if all(found) and [int(m.group(1)) for m in found] == list(range(len(labels))):
        return tuple(m.group(2).strip() for m in found)
    return labels


BESIDE = "labels.txt"
"""The labels file a model file's folder often holds (Teachable Machine's, a repository's)."""


def _labels_beside(path: Path, name: str, classes: int) -> tuple[str, ...]:
    """The labels of ``labels.txt`` beside the model file when there are as many as the
    model's classes, with one line saying so (or why not); else class_0, class_1..."""
    made_up = default_labels(classes)
    beside = path.parent / BESIDE
    if not beside.is_file():
        return made_up
    try:
        labels = teachable_machine_labels(read_label_file(beside))
    except ZooError as error:
        note(f"zoo: {name}: {beside} not used: {error}")
        return made_up
    if len(labels) != classes:
        note(
            f"zoo: {name}: {beside} not used: it has {len(labels)} labels, but {path.name} "
            f"outputs {classes} class scores"
        )
        return made_up
    note(f"zoo: {name}: labels from {beside} ({classes} classes); --labels gives others")
    return labels


def default_labels(classes: int) -> tuple[str, ...]:
    return tuple(DEFAULT_LABEL.format(i) for i in range(classes))


def source_file(spec: ModelSpec) -> Path | None:
    """The Keras file ``spec`` was made from (``keras_file_spec``), or None."""
    if spec.weights is None or not spec.weights.in_place:
        return None
    return in_place_path(spec.weights)


def labels_note(spec: ModelSpec, options: KerasFileOptions) -> str | None:
    """The one-line note when a file's labels are made up."""
    if options.labels is not None or tuple(spec.labels) != default_labels(len(spec.labels)):
        return None
    return (
        f"zoo: {spec.name}: no --labels, so its {len(spec.labels)} classes are called "
        f"{DEFAULT_LABEL.format(0)}..{DEFAULT_LABEL.format(len(spec.labels) - 1)}"
    )


def _size_text(size) -> str:
    return "x".join(str(side) for side in size)


def check_takes_size(model, size: tuple[int, int], graph: Classifier) -> None:
    """A model that takes any size still has a smallest (each convolution and pooling
    shrinks it): the output's shape at ``size``, worked out symbolically (nothing run), must
    be a class-score vector."""
    shape = (1, *size) if graph.flat else (1, *size, graph.channels)
    try:
        out = tuple(model.compute_output_shape(shape))
    except Exception as error:  # whatever Keras says of a size the model cannot take
        out, why = None, keras_complaint(error)
    if out is not None and all(side is None or side > 0 for side in out):
        return
    raise KerasFileError(
        f"--input-size {_size_text(size)}: the model cannot take images that small "
        f"({why if out is None else f'its output would be {out[1:]}'}); pass a larger size"
    )


def _input_size(graph, given, path: Path) -> tuple[int, int]:
    if graph is None:
        if given is None:
            raise KerasFileError(
                f"{path}: its input takes any image size; pass --input-size HEIGHTxWIDTH"
            )
        return given
    if given is not None and tuple(given) != tuple(graph):
        raise KerasFileError(
            f"--input-size {given[0]}x{given[1]}: {path.name} takes {graph[0]}x{graph[1]}; "
            "the option is for files whose input takes any size"
        )
    if problem := input_size_problem(graph):
        raise KerasFileError(f"{path}: its input size {problem}")
    return graph
