"""A TensorFlow SavedModel folder as a model, in either of its two forms.

**With Keras metadata**: what ``model.save("my_model")`` wrote before Keras 3
(``saved_model.pb``, ``keras_metadata.pb``, ``variables/``). Keras 3 loads such a folder only
as an opaque ``TFSMLayer``; ``tf_keras``, the Keras 2 line (the ``savedmodel`` extra), loads it
as the Keras model it is. zoo has it save that model as a legacy ``.h5`` file once, in its
cache (``$ZOO_HOME/saved-models``, keyed by the folder's contents, so that every later command,
and ``zoo verify``, reads the very same file), and then reads that file as any Keras 2 ``.h5``
(its rewrites included): the model Keras 3 loads from it is the reference an export is verified
against.

**Without Keras metadata**: what Keras 3's ``model.export("dir")``, ``tf.saved_model.save`` and
TF Hub write. There is no Keras model inside, only TensorFlow functions; zoo runs the folder's
serving signature (``ServingSignature``) as a Keras model of one layer, so that every command
runs TensorFlow's own function, an export goes through tf2onnx (zoo's emitter converts Keras
layers, and this layer holds a TensorFlow graph) and is verified against that function. What
its outputs are (probabilities or logits) is not recorded anywhere: zoo runs the signature on a
few probe batches and looks (``output_activation``). A SavedModel is a TensorFlow program:
zoo reads its graph before TensorFlow loads it and refuses one that reads or writes files or
calls Python (``OUTSIDE_OPS``).

TensorFlow, Keras and tf_keras are imported inside the functions that need them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.base.errors import ZooError, describe_exception
from zoo.base.files import atomic_path
from zoo.base.paths import zoo_home
from zoo.base.printing import printable
from zoo.sources.keras_file import Classifier, adapt, describe_classifier
from zoo.sources.weights import file_digest, folder_digest, folder_files

KERAS_METADATA = "keras_metadata.pb"


class SavedModelError(ZooError):
    """A SavedModel folder zoo cannot read as a Keras model."""


def is_saved_model(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


def has_keras_metadata(folder: Path) -> bool:
    return (folder / KERAS_METADATA).is_file()


def reads_keras_metadata() -> bool:
    """Whether tf_keras, which reads a Keras 2 SavedModel as the Keras model it holds (the
    ``savedmodel`` extra), is installed; without it such a folder runs as its serving
    signature, as one without Keras metadata does."""
    return importlib.util.find_spec("tf_keras") is not None


def as_keras_file(folder: Path) -> Path:
    """The legacy ``.h5`` file of the Keras 2 SavedModel ``folder`` (one with Keras metadata),
    made once and kept in zoo's cache; one line without ``tf_keras``."""
    target = zoo_home() / "saved-models" / f"{folder_digest(folder)}.h5"
    if not target.is_file():
        _convert(folder, target)
    return target


def _convert(folder: Path, target: Path) -> None:
    try:
        import tf_keras
    except ImportError:
        raise SavedModelError(
            f"{folder}: a Keras 2 SavedModel folder; reading it takes tf_keras, the Keras 2 "
            "line: pip install 'zoo[savedmodel]' (or tf-keras matching your TensorFlow)"
        ) from None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        model = tf_keras.models.load_model(folder, compile=False)
    except Exception as error:  # whatever the folder holds: the user's, in one line
        raise SavedModelError(
            f"{folder}: tf_keras cannot load it ({describe_exception(error)})"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary:
        model.save(temporary, save_format="h5")


SERVING_DEFAULT = "serving_default"
"""The signature TensorFlow Serving calls, and the one ``model.export`` and Keras 2 write."""

OUTSIDE_OPS = frozenset(
    {
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "ImmutableConst",
        "PyFunc",
        "PyFuncStateless",
        "EagerPyFunc",
        "WholeFileReaderV2",
        "TextLineReaderV2",
        "FixedLengthRecordReaderV2",
        "TFRecordReaderV2",
        "LMDBReader",
    }
)
"""TensorFlow ops that reach outside the graph (files, Python): refused anywhere in the folder's
graph, read before TensorFlow loads it (loading runs the folder's initialisers)."""

CHECKPOINT_OPS = frozenset(
    {"Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice", "MergeV2Checkpoints"}
)
"""Ops that read and write checkpoint files: in every SavedModel (its save and restore
functions), never in what the serving signature computes."""

PROBE_SIZE = (224, 224)
"""The image size the probes take where the signature takes any size."""

PROBE_RANGES = ((0, 1), (-1, 1), (0, 255))
"""Besides zeros: the ranges pixels are preprocessed to, probed with uniform noise."""

TYPES = ("float32", "float16", "float64", "uint8")
"""The input types a signature may take: zoo's float32 pixels are cast to them."""


@dataclass
class ServingSignature:
    """A SavedModel folder with no Keras metadata, as the Keras model of one layer that calls
    its serving signature (``signature_model``); what ``KerasFile`` is to a Keras file."""

    path: Path
    sha256: str
    """The folder's digest (``zoo.sources.weights.file_digest``)."""
    model: Any = field(repr=False, default=None)
    """The loaded model, until the first build takes it."""
    graph: Classifier | None = None
    rewrites: tuple[str, ...] = ()
    """Always empty: the folder runs as TensorFlow saved it (read like ``KerasFile``'s)."""

    @classmethod
    def open(cls, folder: Path, probe_size: tuple[int, int] | None = None) -> ServingSignature:
        """The folder checked and loaded; one changed while it was read (a file's name, size
        or mtime) is refused."""
        folder = Path(folder).resolve()
        files = folder_files(folder)
        signature = cls(folder, file_digest(folder))
        signature.model = signature_model(folder, probe_size)
        if folder_files(folder) != files:
            raise _changed(folder)
        return signature

    def build(self, weights: str | None):
        """``ModelSpec.build``: the folder's own variables; a SavedModel has no architecture
        apart from its weights, so neither another weights file nor random init applies."""
        if weights is None or Path(weights).resolve() != self.path:
            given = "none" if weights is None else weights
            raise SavedModelError(
                f"--weights {given}: {self.path.name} is a TensorFlow SavedModel, whose "
                "weights are inside it (its variables); it runs with those only"
            )
        model, self.model = self.model or signature_model(self.path), None
        if self.graph is None:  # a kept folder (zoo import), built from its card
            self.graph = describe_classifier(model, self.path)
        return adapt(model, self.graph)


def copy_folder_checked(source: Path, target: Path, sha256: str) -> None:
    """The SavedModel folder ``source`` copied to ``target`` as it is hashed, refused unless
    it still hashes to ``sha256`` (what was loaded)."""
    if folder_digest(source, copy_to=target) != sha256:
        raise _changed(source)


def _changed(folder: Path) -> SavedModelError:
    return SavedModelError(
        f"{printable(str(folder))}: changed while zoo read it (written to, or replaced); try "
        "again once nothing is writing it"
    )


def signature_model(folder: Path, probe_size: tuple[int, int] | None = None):
    """The Keras model calling ``folder``'s serving signature, its layer's activation
    found by probing (``output_activation``); one line for a folder that is not a one-image,
    one-output function zoo can run."""
    from zoo.sources.keras_model import import_keras, quiet_tensorflow

    keras = import_keras()  # first: TensorFlow starts quietly
    import tensorflow as tf

    label = printable(str(folder))
    check_graph(folder, label)
    try:
        with quiet_tensorflow():
            loaded = tf.saved_model.load(str(folder))
    except Exception as error:  # whatever the folder holds: the user's, in one line
        raise SavedModelError(
            f"{label}: TensorFlow cannot load it ({describe_exception(error)})"
        ) from None
    endpoint = _endpoint(loaded, label)
    _check_ops(_function_ops(endpoint.graph.as_graph_def()) & CHECKPOINT_OPS, label, endpoint)
    _check_input(endpoint, label)
    layer = _signature_layer(loaded, endpoint)
    inputs = keras.Input(tuple(endpoint.spec.shape[1:]), name="image")
    try:
        model = keras.Model(inputs, layer(inputs), name=folder.name)
    except Exception as error:  # the function refuses its own input shape: one line
        raise SavedModelError(
            f"{label}: {endpoint} cannot be called ({describe_exception(error)})"
        ) from None
    layer.scores_activation = output_activation(layer, endpoint.spec.shape, probe_size, label)
    return model


def check_graph(folder: Path, label: str) -> None:
    """Read ``saved_model.pb`` before TensorFlow loads it: a file that is not a SavedModel,
    and any op in ``OUTSIDE_OPS``, is one line."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    try:
        proto = saved_model_pb2.SavedModel.FromString((folder / "saved_model.pb").read_bytes())
    except (OSError, DecodeError) as error:
        raise SavedModelError(
            f"{label}: saved_model.pb is not a SavedModel TensorFlow reads "
            f"({describe_exception(error)})"
        ) from None
    ops = set()
    for meta_graph in proto.meta_graphs:
        ops |= _function_ops(meta_graph.graph_def)
    _check_ops(ops & OUTSIDE_OPS, label, None)


def _function_ops(graph_def) -> set[str]:
    """The op types of a GraphDef and of every function in its library."""
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


def _check_ops(found: set[str], label: str, endpoint: Endpoint | None) -> None:
    if not found:
        return
    where = "its graph" if endpoint is None else str(endpoint)
    raise SavedModelError(
        f"{label}: {where} runs TensorFlow ops that read or write files or call Python "
        f"({', '.join(sorted(found))}); zoo runs SavedModels that only compute"
    )


@dataclass(frozen=True)
class Endpoint:
    """The function zoo runs as the model: a serving signature, or, in a TF2 SavedModel with
    none (TF Hub's), the object's ``__call__`` as traced for inference."""

    name: str
    spec: Any
    """The ``tf.TensorSpec`` of its one input, the image batch."""
    call: Callable
    """images (a tensor) -> class scores (a tensor)."""
    graph: Any
    """The traced function's graph."""

    def __str__(self) -> str:
        return f"its signature {self.name!r}" if self.name != CALL else "its __call__"


CALL = "__call__"


def _endpoint(loaded, label: str) -> Endpoint:
    """``serving_default``, the one signature there is, or else the ``__call__`` traced with
    one tensor and ``training`` off (``_inference_call``)."""
    signatures = dict(loaded.signatures)
    if SERVING_DEFAULT in signatures:
        return _signature(SERVING_DEFAULT, signatures[SERVING_DEFAULT], label)
    if len(signatures) == 1:
        return _signature(*next(iter(signatures.items())), label)
    if signatures:
        raise SavedModelError(
            f"{label}: no {SERVING_DEFAULT!r} signature, and {len(signatures)} others "
            f"({', '.join(sorted(signatures))}); zoo cannot tell which is the model"
        )
    called = _inference_call(loaded, label)
    if called is None:
        raise SavedModelError(
            f"{label}: a SavedModel with no serving signature (saved without signatures=) and "
            "no __call__ of one image tensor, so nothing says which function is the model"
        )
    return called


def _signature(name: str, function, label: str) -> Endpoint:
    """A signature of one input and one output, called by their names."""
    inputs = function.structured_input_signature[1]
    if len(inputs) != 1:
        raise SavedModelError(
            f"{label}: its signature {name!r} takes {len(inputs)} inputs "
            f"({', '.join(sorted(inputs))}); zoo takes models of one image input"
        )
    ((input_name, spec),) = inputs.items()
    outputs = function.structured_outputs  # a signature's: always a dict by name
    if len(outputs) != 1:
        raise SavedModelError(
            f"{label}: its signature {name!r} has {len(outputs)} outputs "
            f"({', '.join(sorted(outputs))}); zoo takes models of one output, the class scores"
        )
    (key,) = outputs

    def call(images):
        return function(**{input_name: images})[key]

    return Endpoint(name, spec, call, function.graph)


def _inference_call(loaded, label: str) -> Endpoint | None:
    """The restored ``__call__``'s first trace that takes one tensor, its other arguments
    Python values none of which is True (``training=False``), called with those same values;
    None where there is no such trace."""
    import tensorflow as tf

    restored = getattr(loaded, CALL, None)  # the restored tf.function, if it was saved
    for concrete in getattr(restored, "concrete_functions", ()):
        args, kwargs = concrete.structured_input_signature
        rest = [*args[1:], *kwargs.values()]
        if not args or not isinstance(args[0], tf.TensorSpec):
            continue
        if any(isinstance(value, tf.TensorSpec) or value is True for value in rest):
            continue

        def call(images, args=args[1:], kwargs=kwargs):
            return _one_tensor(restored(images, *args, **kwargs), label)

        return Endpoint(CALL, args[0], call, concrete.graph)
    return None


def _one_tensor(outputs, label: str):
    """What ``__call__`` returned: a tensor, or a dict of one."""
    if isinstance(outputs, dict) and len(outputs) == 1:
        (outputs,) = outputs.values()
    if not hasattr(outputs, "shape"):
        raise SavedModelError(
            f"{label}: its __call__ returns {type(outputs).__name__}, not one tensor of class "
            "scores"
        )
    return outputs


def _check_input(endpoint: Endpoint, label: str) -> None:
    """An image batch of any size, of a type zoo's pixels cast to."""
    spec = endpoint.spec
    if spec.dtype.name not in TYPES:
        raise SavedModelError(
            f"{label}: {endpoint} takes {spec.dtype.name} input; zoo feeds images as "
            f"{', '.join(TYPES)}"
        )
    if spec.shape.rank is None or spec.shape.rank not in (3, 4) or spec.shape[0] is not None:
        raise SavedModelError(
            f"{label}: {endpoint} takes input of shape {spec.shape}; zoo takes a batch of any "
            "size of images: (None, height, width, channels) or (None, height, width)"
        )


def _signature_layer(loaded, endpoint: Endpoint):
    """A Keras layer calling ``endpoint`` with zoo's float32 pixels cast to its input type
    (rounded and clipped to 0..255 for uint8), its output as float32; it holds ``loaded``, the
    loaded SavedModel, which owns the variables the function reads."""
    dtype = endpoint.spec.dtype.name
    import keras
    import tensorflow as tf

    class ServingSignatureLayer(keras.layers.Layer):
        """``scores_activation``: what the outputs were found to be (``output_activation``),
        which ``describe_classifier`` reads where another layer has its ``activation``."""

        def call(self, images):
            if dtype == "uint8":
                images = tf.clip_by_value(tf.round(images), 0, 255)
            return tf.cast(endpoint.call(tf.cast(images, dtype)), "float32")

    layer = ServingSignatureLayer(name=f"signature_{endpoint.name.strip('_')}", trainable=False)
    layer.saved_model = loaded
    return layer


def _tensorflow_reason(error: Exception) -> str:
    """TensorFlow's reason in one line: an op's error says it on the line before its
    ``[[{{node ...}}]]`` line, after a first line (``Graph execution error:``) and the node's
    stack; any other error, its first line."""
    lines = [line.strip() for line in str(error).splitlines()]
    node = next((i for i, line in enumerate(lines) if line.startswith("[[")), None)
    reason = next((line for line in reversed(lines[:node]) if line), None) if node else None
    return f"{type(error).__name__}: {reason}" if reason else describe_exception(error)


def output_activation(layer, shape, probe_size: tuple[int, int] | None, label: str) -> str:
    """The activation the model's outputs show on four probe batches (zeros, and noise in
    ``PROBE_RANGES``): ``softmax`` when every row is non-negative and sums to 1, ``sigmoid``
    when every value is in [0, 1] but the rows do not sum to 1 (one unit, or independent
    ones), else ``linear`` (logits). Logits fall in [0, 1] and sum to 1 on all four by chance
    only. ``layer``: the ``ServingSignatureLayer``, whose ``call`` is run (not Keras's
    ``__call__``, which hides TensorFlow's reason behind its own first line); ``shape``: the
    signature's input shape; ``probe_size`` where it takes any size."""
    import numpy as np

    dims = shape.as_list()
    size = tuple(dims[1:3]) if None not in dims[1:3] else (probe_size or PROBE_SIZE)
    batch = (2, *size, *dims[3:])
    rng = np.random.default_rng(0)
    probes = [
        np.zeros(batch, np.float32),
        *(rng.uniform(low, high, batch).astype(np.float32) for low, high in PROBE_RANGES),
    ]
    try:
        scores = np.concatenate([np.asarray(layer.call(p)) for p in probes])
    except Exception as error:  # the function refuses the probe: one line
        raise SavedModelError(
            f"{label}: its serving signature fails on a {size[0]}x{size[1]} probe batch "
            f"({_tensorflow_reason(error)})"
        ) from None
    if scores.ndim != 2 or not np.isfinite(scores).all():
        return "linear"  # describe_classifier refuses what is not a vector of scores
    if scores.min() < 0 or scores.max() > 1:
        return "linear"
    if scores.shape[1] > 1 and np.allclose(scores.sum(axis=1), 1, atol=1e-3):
        return "softmax"
    return "sigmoid"
