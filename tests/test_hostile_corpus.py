"""The hostile corpus: what a careless or hostile user gives the ``zoo`` command, each case run
as that user would run it (a fresh process), and held to one rule.

"unexpected error" means a bug in zoo. So every case must end within its time, with the exit
status it should have, no traceback and no "unexpected error", its last line a ``zoo: ...``
sentence (or argparse's usage error), stdout that is strict JSON when ``--json`` was asked
for, and whatever it was pointed at byte-identical afterwards. A new way to break zoo, once
found, becomes a case here.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import run_zoo
from .plugin_packages import BAD, installed
from .tiny_onnx import write_tiny_onnx

TIMEOUT_S = 60


@dataclass
class Case:
    args: list[str]
    status: int = 1
    """1: a refusal in one line; 2: argparse's usage error; 0: done, with a warning line."""
    untouched: list[Path] = field(default_factory=list)
    """Folders whose every file must be byte-identical afterwards."""
    env: dict[str, str] = field(default_factory=dict)
    needs: str | None = None
    """A module the case needs (``ray``); the case skips without it."""
    home: Path | None = None
    """zoo's home for the run (default: an empty one)."""


def _photo(folder: Path, name: str = "red.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(folder / name)
    return folder / name


def _labelled_data(root: Path) -> Path:
    for label in ("red", "blue"):
        for i in range(3):
            _photo(root / label, f"{i}.png")
    return root


def _users_folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "thesis.txt").write_text("three years of work")
    (root / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return root


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nan_scores(tmp: Path) -> Case:
    model = write_tiny_onnx(tmp / "nan.onnx", matrix=np.full((3, 3), np.nan))
    return Case(["predict", str(model), str(_photo(tmp)), "--json"])


def infinite_scores_jsonl(tmp: Path) -> Case:
    model = write_tiny_onnx(tmp / "inf.onnx", matrix=np.full((3, 3), np.inf))
    return Case(["predict", str(model), str(_photo(tmp)), "--jsonl"])


def missing_photo_json(tmp: Path) -> Case:
    return Case(["predict", str(write_tiny_onnx(tmp / "t.onnx")), str(tmp / "no.png"), "--json"])


def truncated_photo(tmp: Path) -> Case:
    photo = _photo(tmp)
    photo.write_bytes(photo.read_bytes()[:40])
    return Case(["predict", str(write_tiny_onnx(tmp / "t.onnx")), str(photo), "--json"])


def not_a_model_file(tmp: Path) -> Case:
    garbage = tmp / "model.onnx"
    garbage.write_bytes(b"\x08\x07garbage" * 100)
    return Case(["predict", str(garbage), str(_photo(tmp))])


def unknown_model(tmp: Path) -> Case:
    return Case(["predict", "resnet5O", str(_photo(tmp))])


def weights_file_missing(tmp: Path) -> Case:
    return Case(["predict", "mobilenet", str(_photo(tmp)), "--weights", str(tmp / "no.h5")])


def superscript_top(tmp: Path) -> Case:
    return Case(
        ["predict", str(write_tiny_onnx(tmp / "t.onnx")), str(_photo(tmp)), "--top", "²"], 2
    )


def endless_top(tmp: Path) -> Case:
    model = str(write_tiny_onnx(tmp / "t.onnx"))
    return Case(["predict", model, str(_photo(tmp)), "--top", "9" * 5000], 2)


def train_into_a_users_folder(tmp: Path) -> Case:
    folder = _users_folder(tmp / "thesis")
    data = _labelled_data(tmp / "data")
    return Case(["train", "mobilenet", str(data), "-o", str(folder)], untouched=[folder, data])


def train_into_a_blank_name(tmp: Path) -> Case:
    data = _labelled_data(tmp / "data")
    return Case(["train", "mobilenet", str(data), "-o", " "], untouched=[data])


def train_into_its_own_data(tmp: Path) -> Case:
    data = _labelled_data(tmp / "data")
    return Case(["train", "mobilenet", str(data), "-o", str(data)], untouched=[data])


def package_into_a_users_folder(tmp: Path) -> Case:
    folder = _users_folder(tmp / "mine")
    return Case(["package", "nosuch", "-o", str(folder)], untouched=[folder])


def evaluate_on_a_folder_without_classes(tmp: Path) -> Case:
    _photo(tmp / "flat")
    return Case(["evaluate", str(write_tiny_onnx(tmp / "t.onnx")), str(tmp / "flat"), "--json"])


def serve_a_card_that_lies(tmp: Path) -> Case:
    lying = write_tiny_onnx(tmp / "l.onnx", lambda card: card.update(labels=[["a", "a"]] * 10))
    return Case(["serve", str(lying), "--port", "0", "--provider", "cpu"])


def serve_budgets_that_contradict(tmp: Path) -> Case:
    model = str(write_tiny_onnx(tmp / "t.onnx"))
    return Case(["serve", model, "--max-request-megapixels", "500", "--port", "0"])


def ray_address_nothing_listens_at(tmp: Path) -> Case:
    model, photo = str(write_tiny_onnx(tmp / "t.onnx")), str(_photo(tmp))
    address = f"127.0.0.1:{_closed_port()}"
    options = ["--engine", "ray", "--address", address, "--connect-timeout", "3"]
    return Case(["predict", model, photo, *options, "--jsonl"], needs="ray")


def _with_plugin(tmp: Path, source: str, *args: str) -> Case:
    """``zoo ARGS`` with a good plugin and a bad one (``source``) installed: done, with one
    warning naming the bad one."""
    return Case(list(args), status=0, env=installed(tmp, source))


def plugin_hook_signature_differs(tmp: Path) -> Case:
    return _with_plugin(tmp, BAD["signature"], "list", "--json")


def plugin_exits_in_a_hook(tmp: Path) -> Case:
    return _with_plugin(tmp, BAD["exit_in_hook"], "plugins", "--json")


def plugin_prints_at_import(tmp: Path) -> Case:
    return _with_plugin(tmp, BAD["print_at_import"], "list", "--json")


def plugin_raises_keyboard_interrupt(tmp: Path) -> Case:
    return _with_plugin(tmp, BAD["keyboard_interrupt_in_hook"], "list")


@functools.cache
def _trained_home() -> Path:
    """A zoo home holding 'colours', trained once (MobileNet, random init, two epochs)."""
    home = Path(tempfile.mkdtemp(prefix="zoo-corpus-home-"))
    data = _labelled_data(home.parent / f"{home.name}-data")
    done = run_zoo(
        "train", "mobilenet", str(data), "-o", "colours", "--weights", "none", "--epochs", "2",
        env={"ZOO_HOME": str(home), "ZOO_BUNDLES": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return home


def _tampered(tmp: Path, edit: Callable[[dict], None]) -> Case:
    home = tmp / "home"
    shutil.copytree(_trained_home(), home)
    card_path = home / "bundles" / "colours" / "card.json"
    card = json.loads(card_path.read_text())
    edit(card)
    card_path.write_text(json.dumps(card))
    return Case(["predict", "colours", str(_photo(tmp)), "--json"], home=home)


def bundle_labels_swapped(tmp: Path) -> Case:
    return _tampered(tmp, lambda card: card["input"]["labels"].reverse())


def bundle_divisor_changed(tmp: Path) -> Case:
    return _tampered(tmp, lambda card: card["input"]["preprocess"].update(divisor=1.0))


def _first_format(size: list[int]) -> Callable[[dict], None]:
    """The card as zoo wrote it before the integrity record, its input size changed."""

    def edit(card: dict) -> None:
        config = card.pop("input")
        del card["integrity"]
        card.update(format_version=1, input_size=size, labels=config["labels"])
        card.update(preprocess=config["preprocess"], interpolation=config["interpolation"])

    return edit


def bundle_first_format_enormous(tmp: Path) -> Case:
    return _tampered(tmp, _first_format([100000, 100000]))


def bundle_first_format_tiny(tmp: Path) -> Case:
    return _tampered(tmp, _first_format([32, 32]))


def export_where_no_file_can_be(tmp: Path) -> Case:
    return Case(["export", "mobilenet", "--weights", "none", "-o", "/proc/m.onnx"])


def _labels_case(tmp: Path, labels: Path | str) -> Case:
    """``predict`` of a Keras file with ``--labels labels``: the labels are read (and refused)
    before the file is, so the file need not even be one."""
    model = tmp / "m.keras"
    model.write_bytes(b"not read")
    return Case(["predict", str(model), str(_photo(tmp)), "--labels", str(labels), "--json"])


def labels_from_a_fifo(tmp: Path) -> Case:
    fifo = tmp / "labels.txt"
    os.mkfifo(fifo)  # nothing writes to it: once, reading it hung for good
    return _labels_case(tmp, fifo)


def labels_from_a_device(tmp: Path) -> Case:
    return _labels_case(tmp, "/dev/zero")  # once read until memory ran out


def labels_file_of_3_gib(tmp: Path) -> Case:
    huge = tmp / "labels.txt"
    with huge.open("wb") as file:
        file.truncate(3 * 2**30)  # sparse: nothing on disk
    return _labels_case(tmp, huge)


def labels_nested_100000_deep(tmp: Path) -> Case:
    (tmp / "labels.json").write_text("[" * 100_000)
    return _labels_case(tmp, tmp / "labels.json")


def labels_with_a_lone_surrogate(tmp: Path) -> Case:
    (tmp / "labels.json").write_text('["cat", "\\ud800"]')
    return _labels_case(tmp, tmp / "labels.json")


def labels_with_a_terminal_escape(tmp: Path) -> Case:
    (tmp / "labels.txt").write_text("cat\n\x1b[2Jdog\n")
    return _labels_case(tmp, tmp / "labels.txt")


def _data_with_a_class(tmp: Path, name: str | bytes) -> Path:
    data = _labelled_data(tmp / "data")
    for i in range(3):
        _photo(data / os.fsdecode(name), f"{i}.png")
    return data


def train_on_a_class_folder_named_with_a_newline(tmp: Path) -> Case:
    data = _data_with_a_class(tmp, "gr\neen")
    return Case(["train", "mobilenet", str(data), "-o", "x", "--weights", "none"], untouched=[data])


def evaluate_on_a_class_folder_named_in_latin_1(tmp: Path) -> Case:
    data = _data_with_a_class(tmp, "caf\xe9".encode("latin-1"))
    model = str(write_tiny_onnx(tmp / "t.onnx"))
    return Case(["evaluate", model, str(data), "--json"], untouched=[data])


def serve_with_no_header_timeout(tmp: Path) -> Case:
    model = str(write_tiny_onnx(tmp / "t.onnx"))
    return Case(["serve", model, "--header-timeout-s", "0", "--port", "0"], 2)


def predict_on_a_fifo_named_like_a_model(tmp: Path) -> Case:
    fifo = tmp / "model.onnx"
    os.mkfifo(fifo)  # once: "no such file"
    return Case(["predict", str(fifo), str(_photo(tmp)), "--json"])


def bundle_card_is_a_fifo(tmp: Path) -> Case:
    case = _tampered(tmp, lambda card: None)
    card = case.home / "bundles" / "colours" / "card.json"
    card.unlink()
    os.mkfifo(card)  # once: a hang
    return case


def _custom_layer_file(tmp: Path) -> Path:
    from .keras_files import make

    return make("custom", tmp)  # beside it, acme_layers.py, which registers its layer


def custom_objects_module_exits(tmp: Path) -> Case:
    model = _custom_layer_file(tmp)
    (tmp / "acme_exits.py").write_text("import sys\nsys.exit(3)\n")
    args = ["predict", str(model), str(_photo(tmp)), "--custom-objects", "acme_exits", "--json"]
    return Case(args)  # once: exit 3, and not a word


def custom_objects_module_says_goodbye(tmp: Path) -> Case:
    model = _custom_layer_file(tmp)
    (tmp / "acme_bye.py").write_text("raise SystemExit('goodbye')\n")
    return Case(["predict", str(model), str(_photo(tmp)), "--custom-objects", "acme_bye"])


def custom_objects_module_prints(tmp: Path) -> Case:
    model = _custom_layer_file(tmp)
    (tmp / "acme_loud.py").write_text("print('registering Gain')\nfrom acme_layers import Gain\n")
    (tmp / "labels.txt").write_text("a\nb\nc\n")
    args = ["predict", str(model), str(_photo(tmp)), "--labels", str(tmp / "labels.txt")]
    args += ["--custom-objects", "acme_loud", "--json"]
    return Case(args, status=0)  # done, the print on stderr, --json whole


def _hostile_keras(tmp: Path, name: str, config, weights: bytes | None = None, *extra) -> Case:
    from .hostile_keras import write_keras

    model = write_keras(tmp / f"{name}.keras", config, weights)
    return Case(["predict", str(model), str(_photo(tmp)), *extra])


def keras_weights_declared_3_5_gib(tmp: Path) -> Case:
    from .hostile_keras import declared_3_5_gib

    return Case(["predict", str(declared_3_5_gib(tmp)), str(_photo(tmp)), "--json"])


def keras_config_2_mib_of_whitespace_over_its_bound(tmp: Path) -> Case:
    case = _hostile_keras(tmp, "blank", " " * (2 * 2**20) + "{}")
    case.env = {"ZOO_MAX_KERAS_CONFIG_MB": "1"}
    return case


def keras_archive_of_many_members(tmp: Path) -> Case:
    from .hostile_keras import model_config, write_keras

    members = [(f"assets/{i}", b"") for i in range(40)]
    model = write_keras(tmp / "many.keras", model_config(), extra=members)
    return Case(["predict", str(model), str(_photo(tmp))], env={"ZOO_MAX_KERAS_MEMBERS": "20"})


def _odd_config(name: str) -> Callable[[Path], Case]:
    def case(tmp: Path) -> Case:
        from .hostile_keras import ODD_CONFIGS

        return _hostile_keras(tmp, name, ODD_CONFIGS[name], None, "--json")

    case.__name__ = f"keras_{name}"
    return case


def keras_h5_model_config_not_text(tmp: Path) -> Case:
    import h5py

    with h5py.File(tmp / "odd.h5", "w") as file:
        file.attrs["model_config"] = 5
    return Case(["predict", str(tmp / "odd.h5"), str(_photo(tmp))])


def keras_lambda_spelled_layers_lambda(tmp: Path) -> Case:
    from .hostile_keras import keras_object, model_config

    sneaky = keras_object("layers.Lambda", {"name": "sneaky"}, module="keras")
    return _hostile_keras(tmp, "sneaky", model_config(sneaky))


def keras_input_size_0x0(tmp: Path) -> Case:
    return _hostile_keras(tmp, "any", "{}", None, "--input-size", "0x0")


KERAS_FILES = (
    keras_weights_declared_3_5_gib,
    keras_config_2_mib_of_whitespace_over_its_bound,
    keras_archive_of_many_members,
    *(
        _odd_config(name)
        for name in (
            "lambda_config_null",
            "lambda_config_string",
            "integer_module",
            "list_registered_name",
            "nested_100000_deep",
            "a_list",
        )
    ),
    keras_h5_model_config_not_text,
    keras_lambda_spelled_layers_lambda,
    keras_input_size_0x0,
)
"""Hostile Keras files (issue 36), made without TensorFlow and refused before Keras sees them."""

SLOW = (
    bundle_card_is_a_fifo,
    custom_objects_module_exits,
    custom_objects_module_says_goodbye,
    custom_objects_module_prints,
    bundle_labels_swapped,
    bundle_divisor_changed,
    bundle_first_format_enormous,
    bundle_first_format_tiny,
    export_where_no_file_can_be,
)
"""Cases that train or build a Keras model first (seconds each)."""

CORPUS: dict[str, Callable[[Path], Case]] = {
    builder.__name__: builder
    for builder in (
        nan_scores,
        infinite_scores_jsonl,
        missing_photo_json,
        truncated_photo,
        not_a_model_file,
        unknown_model,
        weights_file_missing,
        superscript_top,
        endless_top,
        train_into_a_users_folder,
        train_into_a_blank_name,
        train_into_its_own_data,
        package_into_a_users_folder,
        evaluate_on_a_folder_without_classes,
        serve_a_card_that_lies,
        serve_budgets_that_contradict,
        ray_address_nothing_listens_at,
        plugin_hook_signature_differs,
        plugin_exits_in_a_hook,
        plugin_prints_at_import,
        plugin_raises_keyboard_interrupt,
        labels_from_a_fifo,
        labels_from_a_device,
        labels_file_of_3_gib,
        labels_nested_100000_deep,
        labels_with_a_lone_surrogate,
        labels_with_a_terminal_escape,
        train_on_a_class_folder_named_with_a_newline,
        evaluate_on_a_class_folder_named_in_latin_1,
        serve_with_no_header_timeout,
        predict_on_a_fifo_named_like_a_model,
        *KERAS_FILES,
        *SLOW,
    )
}


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def broken_rules(case: Case, result) -> list[str]:
    """What the run did that the rule forbids (empty: it ended cleanly)."""
    problems = []
    if result.returncode != case.status:
        problems.append(f"exit {result.returncode}, not {case.status}")
    if "Traceback" in result.stderr or "unexpected error" in result.stderr:
        problems.append("a traceback or an unexpected error")
    last = result.stderr.strip().splitlines()[-1:] or [""]
    sentence = {0: "zoo: warning: ", 1: "zoo: ", 2: "zoo "}[case.status]
    if not last[0].startswith(sentence):
        problems.append(f"its last line is not zoo's sentence: {last[0]!r}")
    for line in result.stdout.splitlines() if "--jsonl" in case.args else ():
        try:
            _strict_json(line)
        except ValueError as error:
            problems.append(f"a --jsonl line is not strict JSON ({error})")
    if "--json" in case.args and result.stdout.strip():
        try:
            _strict_json(result.stdout)
        except ValueError as error:
            problems.append(f"--json output is not strict JSON ({error})")
    return problems


SLOW_CASES = {
    "evaluate_on_a_class_folder_named_in_latin_1",
    "evaluate_on_a_folder_without_classes",
    "infinite_scores_jsonl",
    "labels_from_a_fifo",
    "labels_nested_100000_deep",
    "missing_photo_json",
    "nan_scores",
    "not_a_model_file",
    "ray_address_nothing_listens_at",
    "serve_a_card_that_lies",
    "serve_budgets_that_contradict",
    "train_into_a_blank_name",
    "train_into_a_users_folder",
    "train_into_its_own_data",
    "train_on_a_class_folder_named_with_a_newline",
    "truncated_photo",
    "unknown_model",
    "weights_file_missing",
}
"""Cases measured at 0.3 s or more on 2 cores (a subprocess that imports more than zoo's core):
slow, so out of the quick loop (``-m 'not slow'``)."""


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow)
        if b in SLOW or b in KERAS_FILES or n in SLOW_CASES
        else n
        for n, b in CORPUS.items()
    ],
)
def test_every_hostile_case_ends_cleanly(name, tmp_path):
    case = CORPUS[name](tmp_path)
    if case.needs and importlib.util.find_spec(case.needs) is None:
        pytest.skip(f"needs {case.needs}")
    before = {folder: _snapshot(folder) for folder in case.untouched}
    env = {"ZOO_HOME": str(case.home or tmp_path / "home"), "ZOO_BUNDLES": "", **case.env}
    result = run_zoo(*case.args, env=env, cwd=tmp_path, timeout=TIMEOUT_S)  # a hang fails
    problems = broken_rules(case, result)
    problems += [
        f"{folder} changed" for folder, files in before.items() if _snapshot(folder) != files
    ]
    assert problems == [], f"{name}: {problems}\n{result.stderr}"


def test_the_rule_catches_what_it_forbids():
    case = Case(["predict", "m", "p.png", "--json"])

    class Run:
        returncode, stdout, stderr = 0, '{"score": NaN}', "Traceback (most recent call last):\n"

    assert broken_rules(case, Run()) == [
        "exit 0, not 1",
        "a traceback or an unexpected error",
        "its last line is not zoo's sentence: 'Traceback (most recent call last):'",
        "--json output is not strict JSON (NaN is not JSON)",
    ]
