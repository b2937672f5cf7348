"""Named rewrites of a Keras file's JSON config, for the files Keras 3 refuses as saved.

Each rewrite is a small function that changes one form older Keras versions wrote (a Keras
2.0 ``Sequential`` stored as a list, ``groups: 1`` on ``DepthwiseConv2D``, a key a later version
dropped) into the form Keras 3 loads, in place, and returns the names of the layers it changed.
``KerasFile.load`` applies them only when plain loading has failed (or, for ``fixed-batch``,
when the loaded model has a fixed batch), then Keras loads the rewritten config with
``safe_mode`` on and the file's own weights: nothing here runs code or touches a weight, so the
loaded model stays the reference an export is verified against.

A rewrite that matches a form it cannot rewrite faithfully (``groups: 2``) raises
``RewriteRefused`` naming the layer and the key. The functions that ask what the installed
Keras accepts import Keras inside themselves.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from zoo.base.errors import ZooError

AUGMENTATION = (
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomContrast",
    "RandomTranslation",
    "RandomBrightness",
)
"""Keras's augmentation layers that are the identity at inference, so a key of their config
that the installed Keras no longer takes changes nothing zoo computes when dropped
(``RandomCrop`` is not one: at inference it crops to its target size)."""

LEGACY_LAYER_KEYS = frozenset({"input_shape", "batch_input_shape", "input_dim", "batch_size"})
"""Keys every Keras layer still takes, beyond its ``__init__``'s own parameters."""


class RewriteRefused(ZooError):
    """A rewrite found a form it cannot make loadable without changing what the model does."""


@dataclass(frozen=True)
class Rewrite:
    name: str
    description: str
    apply: Callable[[dict], list[str]]
    """Changes the config in place; the names of the layers it changed (empty: none matched)."""
    formats: tuple[str, ...] = ("zip", "hdf5")
    """The file formats (``keras_file.file_format``) whose configs it rewrites: Keras's own
    loader of legacy HDF5 files already takes some Keras 2 forms that its ``.keras`` loader
    does not."""


def layers(config: Any) -> Iterator[dict]:
    """Every serialised object (a dict with ``class_name``) in a config, depth first."""
    if isinstance(config, dict):
        if "class_name" in config:
            yield config
        for value in config.values():
            yield from layers(value)
    elif isinstance(config, list):
        for value in config:
            yield from layers(value)


def _layer_name(item: dict) -> str:
    inner = item.get("config")
    name = inner.get("name") if isinstance(inner, dict) else None
    return str(name) if name else item["class_name"]


def sequential_list(config: dict) -> list[str]:
    """Keras 2.0/2.1 saved a ``Sequential``'s config as the bare list of its layers."""
    changed = []
    for item in layers(config):
        if item["class_name"] == "Sequential" and isinstance(item.get("config"), list):
            name = item.get("name") or "sequential"
            item["config"] = {"name": name, "layers": item["config"]}
            changed.append(name)
    return changed


def sequential_input(config: dict) -> list[str]:
    """A Keras 2 ``Sequential`` with no ``InputLayer``, whose first layer holds the input's
    ``batch_input_shape``: given its ``InputLayer``, as Keras 2 made one when it built the model
    (Keras 3 reads the shape as the layer's own and adds a second batch axis)."""
    changed = []
    for item in layers(config):
        inner = item.get("config")
        if item["class_name"] != "Sequential" or not isinstance(inner, dict):
            continue
        members = inner.get("layers")
        if not isinstance(members, list) or not members or not isinstance(members[0], dict):
            continue
        first = members[0].get("config")
        if members[0].get("class_name") == "InputLayer" or not isinstance(first, dict):
            continue
        if not isinstance(first.get("batch_input_shape"), list):
            continue
        shape = first.pop("batch_input_shape")
        input_layer = {"batch_shape": shape, "dtype": first.get("dtype", "float32")}
        input_layer["name"] = f"{_layer_name(members[0])}_input"
        members.insert(0, {"class_name": "InputLayer", "config": input_layer})
        changed.append(str(inner.get("name", "sequential")))
    return changed


def functional_single_io(config: dict) -> list[str]:
    """A Keras 2 functional model names its one input and one output as a list of one
    (``[["out_relu", 0, 0]]``): Keras 3 then makes its output a list, and a layer after it in a
    ``Sequential`` (a Teachable Machine export's pooling) is handed the list. The one entry
    itself is what Keras 3 writes for a model of one input and one output."""
    changed = []
    for item in layers(config):
        inner = item.get("config")
        if item["class_name"] not in ("Functional", "Model") or not isinstance(inner, dict):
            continue
        touched = False
        for key in ("input_layers", "output_layers"):
            value = inner.get(key)
            if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
                inner[key] = value[0]
                touched = True
        if touched:
            changed.append(_layer_name(item))
    return changed


def depthwise_groups(config: dict) -> list[str]:
    """TensorFlow 2.3-2.5 (and so every Teachable Machine export) wrote ``groups: 1`` into
    ``DepthwiseConv2D``, which has no such parameter; 1 is what it computes anyway."""
    changed = []
    for item in layers(config):
        inner = item.get("config")
        if item["class_name"] != "DepthwiseConv2D" or not isinstance(inner, dict):
            continue
        if "groups" not in inner:
            continue
        if inner["groups"] != 1:
            raise RewriteRefused(
                f"layer {_layer_name(item)!r} (DepthwiseConv2D): 'groups' is "
                f"{inner['groups']!r}; zoo rewrites only groups 1, which DepthwiseConv2D computes"
            )
        del inner["groups"]
        changed.append(_layer_name(item))
    return changed


def batch_input_shape(config: dict) -> list[str]:
    """``InputLayer``'s ``batch_input_shape`` (Keras 2) is ``batch_shape`` in Keras 3."""
    changed = []
    for item in layers(config):
        inner = item.get("config")
        if (
            item["class_name"] == "InputLayer"
            and isinstance(inner, dict)
            and "batch_input_shape" in inner
            and "batch_shape" not in inner
        ):
            inner["batch_shape"] = inner.pop("batch_input_shape")
            changed.append(_layer_name(item))
    return changed


def dtype_policy(config: dict) -> list[str]:
    """tf.keras's mixed-precision ``Policy`` object as a layer's dtype, which Keras 3 names
    ``DTypePolicy``."""
    changed = []
    for item in layers(config):
        inner = item.get("config")
        dtype = inner.get("dtype") if isinstance(inner, dict) else None
        if isinstance(dtype, dict) and dtype.get("class_name") == "Policy":
            policy = dtype.get("config", {}).get("name", "float32")
            inner["dtype"] = {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": policy},
                "registered_name": None,
            }
            changed.append(_layer_name(item))
    return changed


def batch_norm_axis(config: dict) -> list[str]:
    """tf.keras saved ``BatchNormalization``'s axis as a one-item list (``[3]``); Keras 3 takes
    an integer."""
    changed = []
    for item in layers(config):
        inner = item.get("config")
        if item["class_name"] != "BatchNormalization" or not isinstance(inner, dict):
            continue
        axis = inner.get("axis")
        if isinstance(axis, list) and len(axis) == 1 and isinstance(axis[0], int):
            inner["axis"] = axis[0]
            changed.append(_layer_name(item))
    return changed


def augmentation_keys(config: dict) -> list[str]:
    """Keys of an augmentation layer the installed Keras no longer takes (``value_range`` on
    Keras 3.3's ``RandomRotation``), dropped: the layer is the identity at inference."""
    import keras

    changed = []
    for item in layers(config):
        inner = item.get("config")
        if item["class_name"] not in AUGMENTATION or not isinstance(inner, dict):
            continue
        accepted = _accepted_keys(getattr(keras.layers, item["class_name"]))
        dropped = [key for key in inner if key not in accepted]
        for key in dropped:
            del inner[key]
        if dropped:
            changed.append(_layer_name(item))
    return changed


def _accepted_keys(cls) -> set[str]:
    """The keyword arguments ``cls`` (a Keras layer class) takes, its bases' included."""
    accepted = set(LEGACY_LAYER_KEYS)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        accepted.update(p.name for p in parameters if p.kind is not p.VAR_KEYWORD)
    accepted.discard("self")
    return accepted


def fixed_batch(config: dict) -> list[str]:
    """A fixed batch size in the file's inputs (``model.build((32, ...))``): open, so that the
    model and its export take any batch; a batch changes nothing a sample computes."""
    changed = []
    for item in layers(config):
        inner = item.get("config")
        if not isinstance(inner, dict):
            continue
        touched = False
        if item["class_name"] == "InputLayer":
            for key in ("batch_shape", "batch_input_shape"):
                touched |= _open_batch(inner, key)
        touched |= _open_batch(inner, "build_input_shape")
        touched |= _open_batch(item.get("build_config") or {}, "input_shape")
        if touched and item["class_name"] == "InputLayer":
            changed.append(_layer_name(item))
    return changed


def _open_batch(holder: dict, key: str) -> bool:
    shape = holder.get(key)
    if isinstance(shape, list) and shape and isinstance(shape[0], int):
        shape[0] = None
        return True
    return False


REWRITES = (
    Rewrite(
        "sequential-list",
        "Keras 2.0/2.1 Sequential config stored as a plain list of layers",
        sequential_list,
    ),
    Rewrite(
        "sequential-input",
        "Keras 2 Sequential with its input shape on its first layer, given an InputLayer",
        sequential_input,
    ),
    Rewrite(
        "functional-single-io",
        "a Keras 2 functional model's one input and output listed as a list of one",
        functional_single_io,
    ),
    Rewrite(
        "depthwise-groups",
        "groups: 1 on DepthwiseConv2D (TensorFlow 2.3-2.5, Teachable Machine)",
        depthwise_groups,
    ),
    Rewrite(
        "batch-input-shape",
        "InputLayer batch_input_shape renamed batch_shape",
        batch_input_shape,
        ("zip",),
    ),
    Rewrite("dtype-policy", "tf.keras mixed-precision Policy as a layer dtype", dtype_policy),
    Rewrite(
        "batch-norm-axis", "BatchNormalization axis saved as a list", batch_norm_axis, ("zip",)
    ),
    Rewrite(
        "augmentation-keys",
        "augmentation-layer keys the installed Keras no longer takes (older 3.x RandomRotation's "
        "value_range)",
        augmentation_keys,
    ),
)
"""Applied, in this order, when Keras refuses a file as saved."""

FIXED_BATCH = Rewrite(
    "fixed-batch", "a fixed batch size in the inputs, opened to any batch", fixed_batch
)
"""Applied when the loaded model has a fixed batch size, whatever else loading needed."""


def rewrite(config: dict, fmt: str, table: tuple[Rewrite, ...] = REWRITES) -> list[str]:
    """Apply every rewrite of ``table`` for files of format ``fmt`` that matches ``config`` (in
    place); the names of those that changed something."""
    return [item.name for item in table if fmt in item.formats and item.apply(config)]


def describe(names: list[str] | tuple[str, ...]) -> str:
    """``sequential-list (Keras 2.0/2.1 ...), ...`` for a summary line."""
    known = {item.name: item.description for item in (*REWRITES, FIXED_BATCH)}
    return ", ".join(f"{name} ({known[name]})" for name in names)
