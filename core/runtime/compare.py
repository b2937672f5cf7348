"""``zoo compare``: every image through every model, one model in memory at a time."""

from __future__ import annotations

import gc
from collections.abc import Sequence

import numpy as np
from PIL import Image

from zoo.base.errors import ZooError
from zoo.base.printing import record
from zoo.model.input_config import InputOverrides, resolve
from zoo.model.spec import ModelSpec
from zoo.runtime.api import load
from zoo.runtime.images import pixels_for
from zoo.sources.weights import WeightsSource


def parse_weights(option: str, models: Sequence[str]) -> dict[str, str]:
    """``--weights`` for several models: a value for all (``imagenet``, ``none``), and/or
    ``MODEL=VALUE`` items, comma-separated: ``--weights none,mobilenet=mobilenet.h5``."""
    default, per_model = "imagenet", {}
    for item in filter(None, (part.strip() for part in option.split(","))):
        name, sep, value = item.partition("=")
        if sep:
            if name not in models:
                raise ZooError(f"--weights names {name!r}, which is not among the models compared")
            per_model[name] = value
        elif WeightsSource.parse(item).file is None or len(models) == 1:
            default = item
        else:
            raise ZooError(f"--weights {item}: a file fits one model; write MODEL={item}")
    return {name: per_model.get(name, default) for name in models}


def compare(
    images: Sequence[tuple[str, Image.Image]],
    specs: Sequence[ModelSpec],
    backend: str,
    weights: dict[str, str],
    top: int,
    overrides: InputOverrides | None = None,
    provider: str = "auto",
    threads: int = 0,
) -> tuple[list[list[dict]], list[str]]:
    """Per image, one result per model; and the one-line errors of models that failed to load.
    ``overrides``: input options for every model (unset: each model's own)."""
    results: list[list[dict]] = [[] for _ in images]
    failures = []
    for spec in specs:
        try:
            model = load(spec.name, backend, weights[spec.name], provider, threads)
        except ZooError as error:
            failures.append(str(error))
            continue
        config = resolve(model.input, overrides)
        pixels = np.stack([pixels_for(image, config) for _, image in images])
        tops = model.top(model.probabilities(pixels), top)
        for per_image, (path, _), top_k in zip(results, images, tops, strict=True):
            per_image.append(record(path, spec.name, backend, top_k))
        del model
        gc.collect()
    return results, failures
