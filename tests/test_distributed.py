"""``zoo predict --engine ray``: the local records, bit for bit, from a Ray actor pool; every
input accounted for. One local Ray (2 CPUs, a small object store) serves the whole session;
the two-node test starts its own cluster beside it. Skipped where Ray is not installed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest

from zoo import distributed
from zoo.base.errors import ZooError
from zoo.cli.main import main
from zoo.distributed import RayOptions
from zoo.plugin.registry import get_registry
from zoo.runtime.samples import sample_images
from zoo.training import evaluate

from .conftest import modules_imported, run_zoo, small_train
from .image_files import (
    empty_file,
    oriented_jpeg,
    rgb,
    sixteen_bit_png,
    text_file,
    truncated_jpeg,
    with_alpha,
)

OBJECT_STORE_BYTES = 100 * 2**20


@pytest.fixture(scope="session")
def ray_installed():
    return pytest.importorskip("ray", reason="Ray is not installed (pip install 'zoo[ray]')")


@pytest.fixture(scope="session")
def ray_session(ray_installed):
    ray = ray_installed
    ray.init(
        address="local",  # never a cluster that happens to run on this machine
        num_cpus=2,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        logging_level="ERROR",
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def onnx_model(request) -> Path:
    """A zoo-exported MobileNet: $ZOO_TEST_ONNX where TensorFlow is absent (CI's ONNX
    Runtime-only environment passes the file it exported elsewhere), else exported here."""
    given = os.environ.get("ZOO_TEST_ONNX")
    return Path(given) if given else request.getfixturevalue("mobilenet_onnx")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """zoo's sample photos plus every kind of file that is hard to read or cannot be read."""
    folder = tmp_path_factory.mktemp("ray-photos")
    for photo in sample_images():
        shutil.copy(photo, folder / photo.name)
    with_alpha(rgb(300, 200)).save(folder / "rgba.png")
    ramp = np.tile(np.linspace(0, 65535, 320).astype(np.uint16), (240, 1))
    sixteen_bit_png(folder / "sixteen_bit.png", ramp)
    oriented_jpeg(folder / "exif_rotated.jpg")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this JPEG stops here")
    empty_file(folder / "empty.jpg")
    truncated_jpeg(folder / "truncated.jpg")
    (folder / "full.jpg").unlink()  # truncated_jpeg's whole file: not needed
    text_file(folder / "notes.png")
    return folder


@pytest.fixture(scope="module")
def local_records(photos, onnx_model):
    """What ``--engine local`` prints, with a missing file after the folder."""
    result = run_zoo(
        "predict", str(onnx_model), str(photos), str(photos / "missing.jpg"),
        "--jsonl", "--provider", "cpu",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert (
        len([r for r in records if "error" in r]) == 5
    )  # corrupt, empty, truncated, text, missing
    return records


def by_image(records):
    return sorted(records, key=lambda record: record["image"])


def test_records_equal_the_local_ones_bit_for_bit_in_input_order(
    ray_session, photos, onnx_model, local_records
):
    records = distributed.predict(
        onnx_model,
        [photos, photos / "missing.jpg"],
        batch_size=3,  # not the local 32: batches cut elsewhere change nothing
        actors=2,
        preserve_order=True,
    )
    assert list(records) == local_records


def test_records_come_in_any_order_but_are_the_same(ray_session, photos, onnx_model):
    local = run_zoo(
        "predict", str(onnx_model), str(photos), "--jsonl", "--top", "2", "--provider", "cpu"
    )
    records = list(distributed.predict(onnx_model, [photos], top=2, batch_size=4))
    assert by_image(records) == by_image(json.loads(line) for line in local.stdout.splitlines())
    assert all(len(record["top"]) == 2 for record in records if "top" in record)


def test_uris_are_listed_and_named_as_given(ray_session, photos, onnx_model, local_records):
    records = list(distributed.predict(onnx_model, [photos.as_uri()], batch_size=8))
    expected = [
        {**record, "image": f"file://{record['image']}"}
        for record in local_records
        if not record["image"].endswith("missing.jpg")
    ]
    assert by_image(records) == by_image(expected)


def test_cli_writes_every_record_to_the_output_folder_and_exits_1(
    ray_session, photos, onnx_model, local_records, tmp_path, capsys
):
    out = tmp_path / "out"
    status = main(
        ["predict", str(onnx_model), str(photos), str(photos / "missing.jpg"),
         "--engine", "ray", "--actors", "2", "--output", str(out)]
    )  # fmt: skip
    assert status == 1
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert by_image(json.loads(line) for line in lines) == by_image(local_records)
    assert [p.name for p in out.iterdir()] == ["predictions.jsonl"]  # no temporary left
    captured = capsys.readouterr()
    assert (
        captured.out
        == f"wrote {len(local_records)} records (5 errors) to {out}/predictions.jsonl\n"
    )
    assert f"zoo: {photos / 'corrupt.jpg'}: corrupt or truncated image" in captured.err


def test_a_dropped_record_fails_the_run_naming_the_file(
    ray_session, photos, onnx_model, monkeypatch, tmp_path, capsys
):
    """Inject a loss inside Ray (a filter after the actors): the count check must catch it."""
    dataset = distributed.RayRun.dataset

    def losing_one(self, *args):
        return dataset(self, *args).filter(lambda row: "parrot.jpg" not in row["record"])

    monkeypatch.setattr(distributed.RayRun, "dataset", losing_one)
    inputs = sorted(str(p) for p in photos.iterdir())
    with pytest.raises(distributed.LostRecords, match=r"for 1, first .*parrot\.jpg"):
        list(distributed.predict(onnx_model, inputs, batch_size=4))
    out = tmp_path / "out"
    status = main(["predict", str(onnx_model), *inputs, "--engine", "ray", "--output", str(out)])
    assert status == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == (
        f"zoo: Ray returned {len(inputs) - 1} records for {len(inputs)} inputs; "
        f"none for 1, first {photos / 'parrot.jpg'}"
    )
    assert list(out.iterdir()) == []  # nothing half-written


def test_a_pool_larger_than_the_machine_is_refused(ray_session, onnx_model):
    job = distributed.RayRun(ray_session, onnx_model.read_bytes(), [], 3, 1, 0, "cpu")
    with pytest.raises(ZooError, match=r"3 actors x 1 CPU need 3 CPUs; this machine has 2 \(fewer"):
        job.check_fits()


TWO_NODES = """
import sys
import ray
from ray.cluster_utils import Cluster
from zoo.cli.main import main

store = int(sys.argv[1])
head = {"num_cpus": 1, "object_store_memory": store}
cluster = Cluster(initialize_head=True, head_node_args=head)
try:
    cluster.add_node(num_cpus=1, object_store_memory=store)
    cluster.wait_for_nodes()
    status = main([*sys.argv[2:], "--address", cluster.address])
    ray.shutdown()
finally:
    cluster.shutdown()
sys.exit(status)
"""


@pytest.mark.slow
def test_two_nodes_share_the_pool(ray_session, photos, onnx_model, local_records):
    """A head and a worker node of 1 CPU each (in a process of their own, beside the session's
    Ray): a pool of 2 one-CPU actors, started in full before any work, must span both."""
    done = subprocess.run(
        [sys.executable, "-c", TWO_NODES, str(OBJECT_STORE_BYTES),
         "predict", str(onnx_model), str(photos), str(photos / "missing.jpg"),
         "--engine", "ray", "--actors", "2", "--jsonl", "--preserve-order"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S": "120"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == local_records


def dies_once(module: str, worker: str, run: str, setup: str = "") -> str:
    """A script running ``zoo ARGS`` (``sys.argv[2:]``) whose ``module.run`` actors are
    ``worker``s that die in their first batch while the marker file ``sys.argv[1]`` does not
    exist; Ray restarts the actor and runs the batch again. ``setup``: lines run first."""
    return f"""
import os
import sys
from pathlib import Path

from zoo.cli.main import main
from {module} import {worker}, {run}
{setup}
MARKER = Path(sys.argv[1])


class DiesOnce({worker}):
    def __call__(self, batch):
        if not MARKER.exists():
            MARKER.touch()
            os._exit(1)
        return super().__call__(batch)


{run}.worker = lambda self: DiesOnce
sys.exit(main(sys.argv[2:]))
"""


DIES_ONCE = dies_once("zoo.distributed", "Classifier", "RayRun")


def test_jsonl_stays_json_lines_when_an_actor_dies(
    ray_session, photos, onnx_model, local_records, tmp_path
):
    """Ray tells every driver of a dead worker, on stdout unless zoo keeps it off: a second
    driver, joined to the session's Ray, whose first actor dies in its first batch."""
    marker = tmp_path / "died"
    address = ray_session.get_runtime_context().gcs_address
    done = subprocess.run(
        [sys.executable, "-c", DIES_ONCE, str(marker),
         "predict", str(onnx_model), str(photos), str(photos / "missing.jpg"),
         "--engine", "ray", "--address", address, "--actors", "1", "--jsonl"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert marker.exists(), done.stderr  # the actor did die
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    assert by_image(json.loads(line) for line in lines) == by_image(local_records)
    assert "zoo: " in done.stderr and "(raylet)" not in done.stderr


# Without a Ray session ---------------------------------------------------------------------


def zoo_on_ray(model: Path, photo: Path, *options: str) -> subprocess.Popen:
    """``zoo predict MODEL PHOTO --engine ray OPTIONS`` in a process of its own."""
    command = (  # Ctrl-C's handler even where this runs with SIGINT ignored (in the background)
        "import signal, sys; from zoo.cli.main import main; "
        "signal.signal(signal.SIGINT, signal.default_int_handler); sys.exit(main())"
    )
    return subprocess.Popen(
        [sys.executable, "-c", command, "predict", str(model), str(photo), "--engine", "ray",
         *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finished(process: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """The process's stdout and stderr once it ends, within ``timeout`` seconds (else killed,
    and the test failed)."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"still running after {timeout} s")


@pytest.fixture
def silent_server(ray_installed):
    """A port that takes connections and never answers: an address with no Ray behind it."""
    with socket.create_server(("", 0)) as server:  # Ray dials this host by its own IP
        server.settimeout(60)
        yield server


def test_an_address_nothing_listens_at_is_one_line_at_once(ray_installed, onnx_model, photo):
    started = time.monotonic()
    process = zoo_on_ray(onnx_model, photo, "--address", "127.0.0.1:1", "--connect-timeout", "3")
    out, err = finished(process, timeout=30)
    assert (process.returncode, out) == (1, "")
    assert err == (
        "zoo: cannot reach a Ray cluster at 127.0.0.1:1 (connection refused): "
        "is 'ray start --head' running there, and is the port open?\n"
    )
    assert time.monotonic() - started < 30


def test_an_address_that_never_answers_is_given_up_after_the_timeout(
    onnx_model, photo, silent_server
):
    address = f"127.0.0.1:{silent_server.getsockname()[1]}"
    process = zoo_on_ray(onnx_model, photo, "--address", address, "--connect-timeout", "3")
    out, err = finished(process, timeout=30)
    assert (process.returncode, out) == (1, "")
    assert err == (
        f"zoo: cannot reach a Ray cluster at {address} (no answer within 3 s): "
        "is 'ray start --head' running there, and is the port open?\n"
    )


@pytest.mark.parametrize(
    ("signum", "code", "message"),
    [(signal.SIGTERM, 143, "zoo: terminated\n"), (signal.SIGINT, 130, "zoo: interrupted\n")],
)
def test_a_signal_while_joining_ends_the_command_at_once(
    onnx_model, photo, silent_server, signum, code, message
):
    address = f"127.0.0.1:{silent_server.getsockname()[1]}"
    process = zoo_on_ray(onnx_model, photo, "--address", address)
    silent_server.accept()[0].close()  # the command reached the address...
    time.sleep(1)  # ... and is in ray.init
    signalled = time.monotonic()
    process.send_signal(signum)
    out, err = finished(process, timeout=30)
    assert time.monotonic() - signalled < 5
    assert (process.returncode, out, err) == (code, "", message)


def test_without_ray_one_line_says_what_to_install(photo, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    assert main(["predict", "model.onnx", str(photo), "--engine", "ray"]) == 1
    assert capsys.readouterr().err == "zoo: the Ray engine needs Ray; pip install 'zoo[ray]'\n"


def test_ray_options_are_refused_by_the_local_engine(photo, capsys):
    assert main(["predict", "model.onnx", str(photo), "--output", "out", "--actors", "2"]) == 1
    assert capsys.readouterr().err == "zoo: --actors, --output: only with --engine ray\n"


def test_ray_is_not_imported_by_zoo_or_its_cli():
    for args in (["--help"], ["predict", "--help"]):
        result, imported = modules_imported(*args, among=("ray",))
        assert result.returncode == 0 and imported == [], result.stderr


def test_a_model_zoo_cannot_run_is_one_line_before_any_actor_starts(
    ray_installed, tmp_path, photo, capsys
):
    model = tmp_path / "garbage.onnx"
    model.write_bytes(b"not a model")
    assert main(["predict", model.as_uri(), str(photo), "--engine", "ray"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"zoo: {model.as_uri()}: not a model ONNX Runtime can load")


# zoo train and zoo evaluate on the actor pool ----------------------------------------------

TRAIN_DIES_ONCE = dies_once(
    "zoo.training.distributed",
    "FeatureWorker",
    "FeatureRun",
    setup="from zoo.plugin.manager import pm\nfrom tests.conftest import TinyCNNPlugin\n"
    'pm.register(TinyCNNPlugin(), name="test-tinycnn")',
)


@pytest.fixture
def keras_installed():
    """Training builds its base in Keras where the command runs (never in the actors): these
    tests skip in an ONNX Runtime-only environment."""
    return pytest.importorskip(
        "keras", reason="training needs TensorFlow (pip install 'zoo[keras]')"
    )


@pytest.fixture
def labelled(data):
    """The colour classes, one file in them that is no image."""
    (data / "red" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this JPEG stops here")
    return data


def cached_features(zoo_home: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (zoo_home / "features").rglob("*.npy")}


def test_training_features_and_evaluation_on_ray_equal_the_local_ones(
    keras_installed,
    ray_session,
    labelled,
    home,
    tmp_path,
    monkeypatch,
    capsys,
):
    local = small_train(labelled, "local", augment=1)
    local_features = cached_features(home)
    local_err = capsys.readouterr().err
    assert local_features and "corrupt.jpg" in local_err
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "ray-home"))
    on_ray = small_train(labelled, "on-ray", augment=1, engine=RayOptions(actors=2))
    assert cached_features(tmp_path / "ray-home") == local_features  # bit for bit
    assert on_ray.features["computed"] == local.features["computed"]
    assert on_ray.unreadable == local.unreadable == {"red/corrupt.jpg": ANY}
    assert on_ray.history == local.history and on_ray.metrics == local.metrics
    assert capsys.readouterr().err == local_err  # the same lines, about the same files

    get_registry(refresh=True)
    here = evaluate("on-ray", labelled, backend="onnx").to_dict()
    there = evaluate("on-ray", labelled, engine=RayOptions(actors=2)).to_dict()  # as its export
    assert there == here and here["unreadable"] == {"red/corrupt.jpg": ANY}

    # A trained model by name, on ONNX Runtime and on Ray, with no export by hand.
    photo = str(labelled / "blue" / "00.jpg")
    capsys.readouterr()
    assert main(["predict", "on-ray", photo, "--backend", "onnx", "--json"]) == 0
    local_records = json.loads(capsys.readouterr().out)
    assert main(["predict", "on-ray", photo, "--engine", "ray", "--actors", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == local_records
    assert main(["evaluate", "on-ray", str(labelled), "--engine", "ray", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == here


def test_files_with_the_same_bytes_are_each_a_job_with_its_record(
    keras_installed,
    ray_session,
    data,
    home,
    capsys,
):
    """Two empty files in a class (the same bytes, so the same content key): each is a job,
    each skipped, as on the local engine; two copies of one photo, each computed."""
    (data / "red" / "empty-1.jpg").write_bytes(b"")
    (data / "red" / "empty-2.jpg").write_bytes(b"")
    shutil.copy(data / "blue" / "00.jpg", data / "blue" / "00-copy.jpg")
    on_ray = small_train(data, "twins", epochs=2, engine=RayOptions(actors=1))
    assert on_ray.unreadable == {"red/empty-1.jpg": ANY, "red/empty-2.jpg": ANY}
    assert on_ray.features["computed"] == 31  # every readable input, the copy included
    skipped = [line for line in capsys.readouterr().err.splitlines() if "skipping" in line]
    assert len(skipped) == 2


def test_an_actor_that_dies_while_computing_features_changes_nothing(
    keras_installed,
    ray_session,
    labelled,
    home,
    tmp_path,
):
    """Ray restarts the actor and runs its batch again: the model is written, its features
    exactly the local ones (or, were they not, the run would have to fail, writing nothing)."""
    local = small_train(labelled, "local")
    marker = tmp_path / "died"
    address = ray_session.get_runtime_context().gcs_address
    ray_home = tmp_path / "ray-home"
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_DIES_ONCE, str(marker),
         "train", "tinycnn", str(labelled), "-o", "survivor", "--weights", "none",
         "--epochs", "15", "--batch-size", "8", "--learning-rate", "0.05", "--augment", "0",
         "--engine", "ray", "--address", address, "--actors", "1", "--json"],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent,
        env={**os.environ, "ZOO_HOME": str(ray_home)},
    )  # fmt: skip
    assert marker.exists(), done.stderr  # the actor did die
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # nothing of Ray's among it
    assert cached_features(ray_home) == cached_features(home)
    assert report["metrics"] == local.to_dict()["metrics"]
    assert (ray_home / "bundles" / "survivor" / "card.json").is_file()


def test_a_record_returned_twice_fails_the_run(ray_session, photos, onnx_model, monkeypatch):
    dataset = distributed.RayRun.dataset

    def doubling_one(self, *args):
        records = dataset(self, *args)
        return records.union(records.filter(lambda row: "parrot.jpg" in row["record"]))

    monkeypatch.setattr(distributed.RayRun, "dataset", doubling_one)
    inputs = sorted(str(p) for p in photos.iterdir())
    with pytest.raises(distributed.LostRecords, match=r"more than one for 1, first .*parrot"):
        list(distributed.predict(onnx_model, inputs, batch_size=4))


def test_train_and_evaluate_refuse_ray_options_without_the_ray_engine(labelled, capsys):
    assert main(["evaluate", "model.onnx", str(labelled), "--actors", "2"]) == 1
    assert capsys.readouterr().err == "zoo: --actors: only with --engine ray\n"
    assert main(["train", "mobilenet", str(labelled), "-o", "x", "--address", "h:1"]) == 1
    assert capsys.readouterr().err == "zoo: --address: only with --engine ray\n"


@pytest.mark.parametrize("failure", [SystemExit(1), RuntimeError("Failed to connect to GCS")])
def test_a_local_ray_that_does_not_start_is_one_line(failure):
    class NoRay:
        def init(self, **options):
            raise failure

    with pytest.raises(ZooError, match=r"^could not start a local Ray: .*--engine local$"):
        distributed.start_or_join(NoRay(), None, timeout=1, ray_logs=False)


def test_a_ray_of_its_own_is_started_and_used(ray_installed, onnx_model, photo, monkeypatch):
    """No address and no RAY_ADDRESS: the command starts a Ray for itself and its records
    come back, on stdout alone."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    process = zoo_on_ray(onnx_model, photo, "--actors", "1", "--jsonl")
    out, err = finished(process, timeout=180)
    assert process.returncode == 0, err
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["image"] == str(photo) and len(record["top"]) == 5


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_backend_the_actors_do_not_run_is_refused_in_one_line(command, photo, capsys):
    target = str(photo) if command == "predict" else str(photo.parent)
    args = [command, "model.onnx", target, "--engine", "ray", "--backend", "openvino"]
    assert main(args) == 1
    assert capsys.readouterr().err == (
        "zoo: --engine ray runs ONNX Runtime in each actor; --backend openvino runs in this "
        "process only: give one or the other\n"
    )
