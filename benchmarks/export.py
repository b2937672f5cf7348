"""zoo's ONNX export against Keras's ``model.export(format="onnx")`` and tf2onnx, side by side,
over the ``keras.applications`` architectures (random-init weights, so it runs offline).

For each architecture, each tool runs in its own process:
  * zoo: ``export_onnx`` on a ``ModelSpec`` built with ``keras_application`` (what
    ``zoo export`` runs for a plugin's model): build, convert, write, and verify against Keras
    on the sample photos;
  * Keras: build, ``model.export(path, format="onnx")``;
  * tf2onnx: build, ``tf2onnx.convert.from_keras(model, opset=17)``.
Each is timed (wall clock) and its peak RSS read from the kernel (``wait4``); a process over
``--memory-cap`` GiB is killed and reported as such. A fourth process builds the model with
``classifier_activation=None`` (same seed, so the same weights) and computes Keras's logits on
two random images; each file is then run on ONNX Runtime (CPU) on the same images: does it
load, take one input, and give Keras's logits (max |diff| / max |logit| <= 1e-4) and top-5?

    python benchmarks/export.py [--models ConvNeXtTiny,EfficientNetB0 | --all] [--memory-cap 16]

``--keras-files`` measures the same three tools on five small seeded model files of the kinds
users have (``tests/keras_files.py``: an augmentation CNN, a legacy .h5 Sequential, a nested
MobileNetV2 transfer model, a logits head, a custom layer) and, where ``../shared`` holds them,
on the real files people committed (``tests/real_keras_files.py``): zoo is ``zoo export FILE``
(the command, verification included, with the options the file's repository implies), the
others load the file with Keras and export it. A real file's Keras reference is the file as zoo
loads it (Keras, on the config rewritten where Keras refuses it as saved); zoo's file is
compared on what Keras outputs (a one-sigmoid head's p as the scores [1 - p, p], zoo's).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.sources.applications import ARCHITECTURES, PLUGIN_TRIAL

TOLERANCE = 1e-4
TOOLS = ("zoo", "keras", "tf2onnx")

_BUILD = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
factory, size, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
import keras
keras.utils.set_random_seed(0)
model = getattr(keras.applications, factory)(weights=None, classifier_activation=None)
"""
CHILDREN = {
    "zoo": """
import sys
from pathlib import Path
from zoo.exporters.onnx import export_onnx
from zoo.sources.keras_model import keras_application
from zoo.model.spec import ExportOptions, ModelSpec
factory, size, path, preprocess = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
spec = ModelSpec(
    factory.lower(), keras_application(factory), (size, size), preprocess=preprocess
)
export_onnx(spec, Path(path), ExportOptions(weights="none"))
""",
    "keras": _BUILD
    + """
model(np.zeros((1, size, size, 3), np.float32))  # export refuses a never-called model
model.export(path, format="onnx", verbose=False)
""",
    "tf2onnx": _BUILD
    + """
import tensorflow as tf, tf2onnx
signature = [tf.TensorSpec((None, size, size, 3), tf.float32, name="image")]
tf2onnx.convert.from_keras(model, input_signature=signature, opset=17, output_path=path)
""",
    "reference": _BUILD
    + """
x = np.load(path)
np.save(path, np.asarray(model(x, training=False)))
""",
}


_LOAD_FILE = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.getcwd())  # the custom layer's module
import numpy as np
import keras
file, path = sys.argv[1], sys.argv[2]
for module in sys.argv[3:]:
    __import__(module)
model = keras.saving.load_model(file, compile=False)
size = tuple(model.inputs[0].shape[1:])
"""
FILE_CHILDREN = {
    "keras": _LOAD_FILE
    + """
model(np.zeros((1, *size), np.float32))
model.export(path, format="onnx", verbose=False)
""",
    "tf2onnx": _LOAD_FILE
    + """
import tensorflow as tf, tf2onnx
signature = [tf.TensorSpec((None, *size), tf.float32, name="image")]
tf2onnx.convert.from_keras(model, input_signature=signature, opset=17, output_path=path)
""",
    "reference": _LOAD_FILE
    + """
x = np.load(path)
np.save(path, np.asarray(model(x, training=False)))
""",
}

_REFERENCE_REWRITTEN = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from pathlib import Path
import numpy as np
from zoo.sources.keras_file import KerasFile, KerasFileOptions
file, path, low, high = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
model = KerasFile.open(Path(file), KerasFileOptions()).model
shape = tuple(model.inputs[0].shape[1:])
x = np.random.default_rng(0).uniform(low, high, (2, *shape)).astype(np.float32)
np.savez(path, x=x, y=np.asarray(model(x, training=False)))
"""
"""A real file's reference: the file as zoo loads it, its own outputs on seeded inputs."""

WARM_UP = "import keras, onnxruntime, tensorflow, tf2onnx, zoo.exporters.onnx"


@dataclass
class Run:
    seconds: float
    peak_rss_gib: float
    ok: bool
    note: str = ""


def measure(command: list[str], memory_cap_gib: float) -> Run:
    """Run ``command``; its wall time and peak RSS, killing it above the memory cap."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = threading.Event()

    def watch() -> None:
        status = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            try:
                rss_kib = next(
                    int(line.split()[1])
                    for line in status.read_text().splitlines()
                    if line.startswith("VmRSS:")
                )
            except (OSError, StopIteration):
                return
            if rss_kib > memory_cap_gib * 2**20:
                killed.set()
                process.kill()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stderr = process.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    seconds = time.monotonic() - started
    peak = usage.ru_maxrss / 2**20  # KiB -> GiB
    if killed.is_set():
        return Run(seconds, peak, False, f"killed above {memory_cap_gib:g} GiB")
    if process.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        return Run(seconds, peak, False, (lines or ["failed"])[-1].strip()[:90])
    return Run(seconds, peak, True)


def agreement(
    path: Path, x: np.ndarray, expected: np.ndarray, output: str = "logits", binary: bool = False
) -> str:
    """Whether the file loads, takes the image alone, and gives Keras's logits (or its
    ``output``, where the file has one of that name) and top-5. ``x`` is reshaped to the
    file's input rank (zoo's graph of an (h, w) model takes (h, w, 1)); ``binary``: Keras
    gives one sigmoid p, compared as the scores [1 - p, p] (zoo's two columns)."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # any load failure is the result
        return f"does not load ({str(error).splitlines()[0][:60]})"
    inputs = session.get_inputs()
    if len(inputs) != 1:
        return f"asks for {len(inputs)} inputs ({', '.join(i.name for i in inputs)})"
    names = [o.name for o in session.get_outputs()]
    output = output if output in names else names[0]
    rank = len(inputs[0].shape)
    x = x.reshape(*x.shape, 1) if rank == x.ndim + 1 else x
    (logits,) = session.run([output], {inputs[0].name: x})
    if binary:
        expected = np.concatenate([1 - expected, expected], axis=1)
        logits = logits if logits.shape[-1] == 2 else np.concatenate([1 - logits, logits], 1)
    difference = float(np.abs(logits - expected).max())
    relative = difference / float(np.abs(expected).max())
    same_top5 = np.array_equal(
        np.argsort(-logits, axis=1)[:, :5], np.argsort(-expected, axis=1)[:, :5]
    )
    verdict = "yes" if relative <= TOLERANCE and same_top5 else "**no**"
    top5 = "same" if same_top5 else "differs"
    return f"{verdict} (max diff {difference:.1e}, {relative:.1e} of scale, top-5 {top5})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(PLUGIN_TRIAL), help="factory names")
    parser.add_argument("--all", action="store_true", help="all 40 architectures")
    parser.add_argument("--memory-cap", type=float, default=16.0, help="GiB (default 16)")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument(
        "--keras-files", action="store_true", help="the five model files instead of --models"
    )
    args = parser.parse_args()
    if args.keras_files:
        keras_files_main(args.memory_cap, args.tools.split(","))
        return
    models = list(ARCHITECTURES) if args.all else args.models.split(",")
    tools = args.tools.split(",")

    # The first process to import TensorFlow reads it from disk; the others find it cached.
    subprocess.run([sys.executable, "-c", WARM_UP], check=True, capture_output=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in models:
            architecture = ARCHITECTURES[name]
            x_path = Path(folder, f"{name}-x.npy")
            low, high = (0, 255) if architecture.preprocess == "none" else (-1, 1)
            size = (2, architecture.size, architecture.size, 3)
            x = np.random.default_rng(0).uniform(low, high, size).astype(np.float32)
            np.save(x_path, x)
            common = [name, str(architecture.size)]
            runs = {}
            for tool in tools:
                path = Path(folder, f"{name}-{tool}.onnx")
                print(f"{name}: {tool} ...", file=sys.stderr, flush=True)
                extra = [architecture.preprocess] if tool == "zoo" else []
                command = [sys.executable, "-c", CHILDREN[tool], *common, str(path), *extra]
                runs[tool] = measure(command, args.memory_cap)
                print(f"  {runs[tool]}", file=sys.stderr, flush=True)
            reference = measure(
                [sys.executable, "-c", CHILDREN["reference"], *common, str(x_path)],
                args.memory_cap,
            )
            paths = {tool: Path(folder, f"{name}-{tool}.onnx") for tool in tools}
            verdicts = _verdicts(runs, reference, x_path, paths, x)
            for path in paths.values():
                path.unlink(missing_ok=True)
            rows.append((name, runs, verdicts))
            print(_row(name, runs, verdicts, tools), file=sys.stderr, flush=True)

    _print_table("model", rows, tools)


def _verdicts(
    runs: dict,
    reference: Run,
    x_path: Path,
    paths: dict,
    x: np.ndarray,
    output: str = "logits",
    expected: np.ndarray | None = None,
) -> dict[str, str]:
    """Per tool: whether its file gives the Keras reference's outputs (``expected``, or those
    saved at ``x_path``)."""
    if expected is None and reference.ok:
        expected = np.load(x_path)
    verdicts = {}
    for tool, path in paths.items():
        if not runs[tool].ok:
            verdicts[tool] = "—"
        elif expected is None:
            verdicts[tool] = f"no Keras reference ({reference.note})"
        else:
            binary = expected.shape[-1] == 1
            verdicts[tool] = agreement(path, x, expected, output, binary)
    return verdicts


def _print_table(what: str, rows: list, tools: list[str]) -> None:
    header = [f"{tool}: time, peak RSS" for tool in tools]
    header += [f"{tool}'s file matches Keras" for tool in tools]
    print(f"| {what} | " + " | ".join(header) + " |")
    print("|---" * (1 + 2 * len(tools)) + "|")
    for name, runs, verdicts in rows:
        print(_row(name, runs, verdicts, tools))


_MAKE_FILES = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tests import keras_files
for kind in keras_files.GOOD:
    keras_files.make(kind, Path(sys.argv[2]))
"""


def keras_files_main(memory_cap: float, tools: list[str]) -> None:
    """The three tools on each of ``tests/keras_files.py``'s good files, in its folder."""
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo))
    from tests import keras_files

    subprocess.run([sys.executable, "-c", WARM_UP], check=True, capture_output=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-c", _MAKE_FILES, str(repo), folder], check=True)
        os.chdir(folder)  # where the custom layer's module is, for every tool
        for kind, file in keras_files.GOOD.items():
            options = list(file.options)
            modules = options[1:] if options[:1] == ["--custom-objects"] else []
            runs = {}
            for tool in tools:
                path = Path(folder, f"{kind}-{tool}.onnx")
                print(f"{file.name}: {tool} ...", file=sys.stderr, flush=True)
                if tool == "zoo":
                    command = [sys.executable, "-m", "zoo", "export", file.name]
                    command += ["-o", str(path), *options]
                else:
                    command = [sys.executable, "-c", FILE_CHILDREN[tool], file.name, str(path)]
                    command += modules
                runs[tool] = measure(command, memory_cap)
                print(f"  {runs[tool]}", file=sys.stderr, flush=True)
            x_path = Path(folder, f"{kind}-x.npy")
            shape = _input_shape(Path(folder, file.name))
            low, high = (-1, 1) if "--preprocess" in options else (0, 255)
            x = np.random.default_rng(0).uniform(low, high, (2, *shape)).astype(np.float32)
            np.save(x_path, x)
            reference_child = [sys.executable, "-c", FILE_CHILDREN["reference"], file.name]
            reference = measure([*reference_child, str(x_path), *modules], memory_cap)
            # zoo's file has both outputs; Keras's own is probabilities unless it ends in logits
            output = "logits" if kind == "logits" else "probabilities"
            paths = {tool: Path(folder, f"{kind}-{tool}.onnx") for tool in tools}
            verdicts = _verdicts(runs, reference, x_path, paths, x, output)
            rows.append((file.description, runs, verdicts))
            print(_row(file.description, runs, verdicts, tools), file=sys.stderr, flush=True)
        rows += _real_file_rows(Path(folder), memory_cap, tools)
    _print_table("file", rows, tools)


def _real_file_rows(folder: Path, memory_cap: float, tools: list[str]) -> list:
    """The three tools on each real file of ``../shared`` (none when it is absent)."""
    from tests import real_keras_files as real

    if not real.ROOT.is_dir():
        print(f"{real.ROOT} is absent: no real files", file=sys.stderr)
        return []
    rows = []
    for name, file in real.FILES.items():
        source = real.ROOT / file.path
        runs = {}
        for tool in tools:
            path = folder / f"real-{name}-{tool}.onnx"
            print(f"{file.path}: {tool} ...", file=sys.stderr, flush=True)
            if tool == "zoo":
                command = [sys.executable, "-m", "zoo", "export", str(source), "-o", str(path)]
                command += file.options
            else:
                command = [sys.executable, "-c", FILE_CHILDREN[tool], str(source), str(path)]
            runs[tool] = measure(command, memory_cap)
            print(f"  {runs[tool]}", file=sys.stderr, flush=True)
        x_path = folder / f"real-{name}-x.npz"
        low, high = (0, 1) if file.options else (0, 255)
        command = [sys.executable, "-c", _REFERENCE_REWRITTEN, str(source), str(x_path)]
        reference = measure([*command, str(low), str(high)], memory_cap)
        saved = np.load(x_path) if reference.ok else None
        x, expected = (saved["x"], saved["y"]) if saved is not None else (None, None)
        scores = expected is None or expected.shape[-1] == 1
        scores = scores or np.allclose(expected.sum(axis=-1), 1, 0, 1e-3)
        output = "probabilities" if scores else "logits"  # Keras's own output, zoo's name
        paths = {tool: folder / f"real-{name}-{tool}.onnx" for tool in tools}
        verdicts = _verdicts(runs, reference, x_path, paths, x, output, expected)
        rows.append((f"real: {file.path}", runs, verdicts))
        print(_row(rows[-1][0], runs, verdicts, tools), file=sys.stderr, flush=True)
    return rows


def _input_shape(path: Path) -> tuple[int, ...]:
    """(height, width, channels), from the file's config (no TensorFlow)."""
    from zoo.sources.keras_file import read_config

    config = read_config(path)["config"]
    layers = config["layers"]
    first = layers[0]["config"]
    return tuple(first.get("batch_shape") or first["batch_input_shape"])[1:]


def _row(name: str, runs: dict, verdicts: dict, tools: list[str]) -> str:
    cells = [name]
    for tool in tools:
        run = runs[tool]
        memory = f"{run.peak_rss_gib * 1024:.0f} MiB"
        failure = f"fails after {run.seconds:.0f} s: {run.note.replace('|', '/')}"
        cells.append(f"{run.seconds:.1f} s, {memory}" if run.ok else f"{failure}, {memory}")
    cells += [verdicts[tool].replace("|", "/") for tool in tools]
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
