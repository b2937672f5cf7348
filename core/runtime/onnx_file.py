"""Running a zoo-exported .onnx file on ONNX Runtime: no registry, no plugin, no TensorFlow.

Execution providers: with ``provider="auto"``, CUDA when this ONNX Runtime build has it, the
machine has an NVIDIA GPU and CUDA's libraries load, else CPU — with one line saying why when a
GPU is there but CUDA fails, and silently where there is no GPU. ONNX Runtime's own multi-line
error about the missing CUDA libraries is kept off the terminal.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np

from zoo.base.errors import BackendUnavailable, ZooError, describe_exception
from zoo.base.hardware import has_nvidia_gpu, preload_cuda
from zoo.base.stdio import filtered_stderr
from zoo.base.user_files import missing_reason
from zoo.model.card import METADATA_KEY, ModelCard
from zoo.model.spec import Runner
from zoo.runtime.cpu_check import warn_if_verified_elsewhere
from zoo.runtime.model import Model

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
# ONNX Runtime's log lines, and the colour reset its coloured error message ends with.
_ORT_LOG_LINE = re.compile(r"\[[EW]:onnxruntime:|^\x1b\[[0-9;]*m\s*$")


class ModelFileError(ZooError):
    """A .onnx file that zoo cannot run: missing, corrupt, or not exported by zoo."""


class OnnxRunner(Runner):
    """An ONNX Runtime session with a zoo model card: a batch in, probabilities out.

    The batch is what ``card.host_input`` makes of the pixels: preprocessed float32, or,
    for a graph that preprocesses itself (uint8 input), the pixel values, fed as uint8.
    """

    def __init__(self, session, card: ModelCard):
        self.session = session
        self.card = card
        self.precision = card.precision
        """What it computes in: the file's precision (ONNX Runtime runs it as it was made)."""

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run([self.card.probabilities_name], batch)[0]

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and, when the file has them, logits (pre-softmax), in one run."""
        if self.card.logits_name is None:
            return self(batch), None
        probabilities, logits = self.run(
            [self.card.probabilities_name, self.card.logits_name], batch
        )
        return probabilities, logits

    def run(self, names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        """The graph outputs ``names`` for one batch."""
        return self.session.run(names, self.feed(batch))

    def feed(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """What ONNX Runtime is given for one batch: the input, in the graph's dtype and
        layout (zoo's batches are NHWC; an NCHW export's, ``zoo export --layout nchw``, are
        transposed)."""
        if self.card.embeds_preprocessing and batch.dtype != np.uint8:
            batch = np.clip(np.rint(batch), 0, 255)  # pixel values as floats: exact in uint8
        if self.card.input_layout == "NCHW":
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return {self.card.input_name: batch.astype(self.card.input_dtype, copy=False)}


def load_onnx(
    path: str | os.PathLike, provider: str = "auto", threads: int = 0, varying_batches: bool = False
) -> Model:
    """A zoo-exported .onnx file as a ``Model``; any problem is a one-line ``ZooError``."""
    session = open_session(path, provider, threads, varying_batches)
    card = read_card(session, path)
    check_card(session, card, path)
    warn_if_verified_elsewhere(card, path)
    runner = OnnxRunner(session, card)
    return Model(card.model, card.host_input, runner, "onnx", str(path), card.precision, card)


def read_card(session, path: str | os.PathLike) -> ModelCard:
    return card_from_metadata(session.get_modelmeta().custom_metadata_map, path)


def card_from_metadata(metadata: dict[str, str], path: str | os.PathLike) -> ModelCard:
    """The zoo model card among a .onnx file's ``metadata_props`` (as any runtime reads them)."""
    if METADATA_KEY not in metadata:
        raise ModelFileError(
            f"{path}: has no zoo metadata, so zoo cannot know its preprocessing and labels; "
            "export the model with 'zoo export MODEL --onnx'"
        )
    try:
        return ModelCard.from_json(metadata[METADATA_KEY])
    except ValueError as error:
        raise ModelFileError(f"{path}: {error}") from None


ORT_TYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}
"""The input dtypes a card may declare (what ``OnnxRunner.feed`` feeds), as ONNX Runtime
names them."""


def check_card(session, card: ModelCard, path: str | os.PathLike) -> None:
    """The card against the graph it describes: a card is data from outside, and one that
    disagrees with the graph (a 100000x100000 input size, 10 labels for 1000 classes) would
    otherwise fail on every image, or exhaust memory resizing to its size. ``ModelFileError``
    naming the first disagreement."""
    problem = card_mismatch(card, session.get_inputs(), session.get_outputs())
    if problem:
        raise ModelFileError(f"{path}: its zoo model card does not match its graph: {problem}")


def card_mismatch(card: ModelCard, inputs, outputs) -> str | None:
    size = card.input.size  # two positive integers, and at least one label: InputConfig checks
    if card.input_layout not in ("NHWC", "NCHW"):
        return f"input layout {card.input_layout!r}; zoo feeds NHWC or NCHW"
    if card.input_dtype not in ORT_TYPES:
        return f"input dtype {card.input_dtype!r}; zoo feeds {' or '.join(ORT_TYPES)}"
    graph_inputs = {node.name: node for node in inputs}
    graph_outputs = {node.name: node for node in outputs}
    if card.input_name not in graph_inputs:
        return f"the graph has no input {card.input_name!r}"
    graph_input = graph_inputs[card.input_name]
    if graph_input.type != ORT_TYPES[card.input_dtype]:
        return f"input dtype {card.input_dtype}, the graph's is {graph_input.type}"
    # any batch size; a grayscale model's graph takes one channel, RGB with preprocessing inside
    channels = 3 if card.embeds_preprocessing else card.input.preprocess.channels
    wanted = (None, *size, channels) if card.input_layout == "NHWC" else (None, channels, *size)
    if len(graph_input.shape) != 4 or any(
        isinstance(dim, int) and want is not None and dim != want
        for dim, want in zip(graph_input.shape, wanted, strict=True)
    ):
        dims = ", ".join(str(dim) for dim in wanted[1:])
        layout = "" if card.input_layout == "NHWC" else f"layout {card.input_layout} "
        return f"input {layout}(batch, {dims}), the graph's is {graph_input.shape}"
    per_class = [name for name in (card.probabilities_name, card.logits_name) if name]
    top_k = [card.top_k.scores_name, card.top_k.indices_name] if card.top_k else []
    for name in [*per_class, *top_k]:
        if name not in graph_outputs:
            return f"the graph has no output {name!r}"
    for name in per_class:
        classes = graph_outputs[name].shape[-1] if graph_outputs[name].shape else None
        labels = len(card.input.labels)
        if isinstance(classes, int) and classes != labels:
            return f"{labels} labels, but the graph's {name!r} has {classes} classes"
    return None


def open_session(
    path: str | os.PathLike, provider: str = "auto", threads: int = 0, varying_batches: bool = False
):
    """An ``onnxruntime.InferenceSession`` on the best (or the requested) execution provider.

    ``threads``: ONNX Runtime's intra-op threads (0: one per physical core).
    ``varying_batches``: no memory pattern per input shape (``LoadOptions.varying_batches``).
    """
    ort = import_onnxruntime()
    if not Path(path).is_file():
        raise ModelFileError(f"{path}: {missing_reason(path)}")
    providers = _providers(ort, provider)
    if providers[0] == PROVIDERS["cuda"]:
        preload_cuda(ort)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.enable_mem_pattern = not varying_batches
    try:
        with filtered_stderr(_ORT_LOG_LINE) as dropped:
            session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # ONNX Runtime raises its own Fail/InvalidProtobuf types
        message = describe_exception(error)
        raise ModelFileError(f"{path}: not a model ONNX Runtime can load ({message})") from None
    wanted = providers[0]
    if wanted != "CPUExecutionProvider" and wanted not in session.get_providers():
        reason = _cuda_failure(dropped)
        if provider != "auto":
            raise BackendUnavailable(f"execution provider {provider!r} is not usable: {reason}")
        print(f"zoo: CUDA is not usable ({reason}); running on CPU", file=sys.stderr)
    return session


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:
        raise BackendUnavailable(
            f"ONNX Runtime is not installed ({error}); pip install onnxruntime (or onnxruntime-gpu)"
        ) from None
    return onnxruntime


def _providers(ort, provider: str) -> list[str]:
    available = ort.get_available_providers()
    if provider == "auto":
        gpu = PROVIDERS["cuda"]
        usable = gpu in available and has_nvidia_gpu()
        return [gpu, PROVIDERS["cpu"]] if usable else [PROVIDERS["cpu"]]
    name = PROVIDERS.get(provider.lower(), provider)
    if name not in available:
        raise BackendUnavailable(
            f"execution provider {provider!r} is not in this ONNX Runtime build "
            f"(it has: {', '.join(available)})"
        )
    return [name] if name == PROVIDERS["cpu"] else [name, PROVIDERS["cpu"]]


def _cuda_failure(log_lines: list[str]) -> str:
    """The gist of ONNX Runtime's complaint, e.g. the CUDA library it could not load."""
    for line in log_lines:
        found = re.search(r"with error: ([^\x1b]+?)(?:\x1b|$)", line)
        if found:
            return found.group(1).strip()
    return "its libraries did not load" if log_lines else "ONNX Runtime did not enable it"
