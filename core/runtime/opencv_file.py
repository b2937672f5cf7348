"""Running a zoo-exported .onnx file on OpenCV DNN (``cv2.dnn.readNetFromONNX``, from
``opencv-python-headless``): the runtime many edge deployments load ONNX into.

OpenCV DNN computes in float32 on the CPU. It says nothing about a graph's inputs and outputs
before it runs, so the card is checked against the graph by running it once on a blank image:
the outputs the card names must come out, one score per label.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from zoo.base.errors import BackendUnavailable, describe_exception
from zoo.model.card import ModelCard
from zoo.runtime.cpu_check import warn_if_verified_elsewhere
from zoo.runtime.model import Model
from zoo.runtime.onnx_file import ModelFileError, OnnxRunner
from zoo.runtime.onnx_metadata import file_card


class OpenCvRunner(OnnxRunner):
    """An OpenCV DNN network with a zoo model card, fed and read as an ONNX Runtime session is
    (``OnnxRunner``). A network holds its input between ``setInput`` and ``forward``: one run
    at a time."""

    def __init__(self, net, card: ModelCard, version: str):
        self.net = net
        self.card = card
        self.precision = card.precision
        self.runtime = f"OpenCV DNN {version}"
        self._lock = threading.Lock()

    def run(self, names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        [(name, inputs)] = self.feed(batch).items()
        with self._lock:
            self.net.setInput(inputs, name)
            return [np.array(output) for output in self.net.forward(names)]


def import_opencv():
    try:
        import cv2
    except ImportError as error:
        raise BackendUnavailable(
            f"OpenCV is not installed ({error}); pip install 'zoo[opencv]'"
        ) from None
    return cv2


def load_opencv(path: str | os.PathLike, precision: str | None = None, threads: int = 0) -> Model:
    """A zoo-exported .onnx file on OpenCV DNN's CPU backend; any problem is one line."""
    cv2 = import_opencv()
    card = file_card(path)
    if precision not in (None, "fp32", card.precision):
        raise BackendUnavailable(f"OpenCV DNN computes in fp32 on the CPU, not {precision}")
    try:
        net = cv2.dnn.readNetFromONNX(str(path))
    except cv2.error as error:
        message = describe_exception(error).strip().splitlines()[-1]
        raise ModelFileError(f"{path}: not a model OpenCV DNN can load ({message})") from None
    if threads:
        cv2.setNumThreads(threads)  # OpenCV's threads are per process
    runner = OpenCvRunner(net, card, cv2.__version__)
    _check_outputs(runner, path, cv2.error)
    warn_if_verified_elsewhere(card, path)
    return Model(card.model, card.host_input, runner, "opencv", str(path), runner.precision, card)


def _check_outputs(runner: OpenCvRunner, path, opencv_error) -> None:
    """One run on a blank image: the card's outputs, one score per label, or
    ``ModelFileError``."""
    card = runner.card
    channels = 3 if card.embeds_preprocessing else card.input.preprocess.channels
    blank = np.zeros((1, *card.input.size, channels), np.float32)
    names = [name for name in (card.probabilities_name, card.logits_name) if name]
    try:
        outputs = runner.run(names, blank)
    except opencv_error as error:
        message = describe_exception(error).strip().splitlines()[-1]
        raise ModelFileError(
            f"{path}: OpenCV DNN cannot run it as its zoo model card describes ({message})"
        ) from None
    for name, output in zip(names, outputs, strict=True):
        if output.shape != (1, len(card.input.labels)):
            raise ModelFileError(
                f"{path}: its zoo model card does not match its graph: {len(card.input.labels)} "
                f"labels, but OpenCV DNN's {name!r} has shape {output.shape}"
            )
