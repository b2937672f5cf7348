"""``zoo predict`` past one machine: the same records, computed by a pool of Ray actors.

Ray Data hands each actor batches of file names; the actor reads the files' bytes and decodes
them with zoo's own image reading (so the pixels, and the results, are bit for bit those of
``zoo predict``), and holds one ONNX Runtime session, built in its constructor with
``intra_op_num_threads`` set to the actor's CPUs. The model travels to the actors through
Ray's object store, so the workers need no shared path, and only ONNX Runtime: no TensorFlow.

(The first version had ``ray.data.read_binary_files`` read the bytes, in tasks of their own.
On 2 cores those tasks, their worker processes and the bytes' trip through the object store
cost more than they saved, and one unreadable file fails such a read as a whole, so the
driver had to vet every local file first.)

Nothing is lost: every input yields exactly one record, a prediction or zoo's error record; a
bad image is an error record made inside the actor, never an exception there. The driver
counts the records against the inputs and raises a ``ZooError`` naming what is missing if
they differ.

Joining a cluster is bounded: a TCP connect to the address first (nothing listening is one
line at once), then ``ray.init`` in a thread of its own, waited for at most what is left of
``connect_timeout``. Ray waits for a cluster in C++, which never hands the main thread back
to Python, so there it would hold off Ctrl-C and SIGTERM; in a thread, the main thread only
waits. Starting a Ray of our own (no address) must happen in the main thread (see
``start_or_join``), after which zoo's SIGTERM handler, which ``ray.init`` replaces, is put
back.

Ray is imported only here, and only when this path is taken.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from zoo.base import jsonio
from zoo.base.errors import BackendUnavailable, ImageError, ZooError, describe_exception
from zoo.model.input_config import InputOverrides, resolve
from zoo.runtime.images import read_bytes
from zoo.runtime.pipeline import Decoded, batch_records, decode, expand_inputs
from zoo.runtime.samples import IMAGE_SUFFIXES

RAY_MISSING = "the Ray engine needs Ray; pip install 'zoo[ray]'"
CONNECT_TIMEOUT_S = 30.0
"""How long a cluster named by an address gets to answer (``zoo predict --connect-timeout``)."""
READERS = 8
"""Files each actor reads at once: object storage takes tens of ms to answer each."""


class LostRecords(ZooError):
    """Ray gave back a different number of records than there were inputs."""


class ClusterUnreachable(ZooError):
    """No Ray cluster answered at the address given."""

    def __init__(self, address: str, reason: str):
        super().__init__(
            f"cannot reach a Ray cluster at {address} ({reason}): "
            "is 'ray start --head' running there, and is the port open?"
        )


def import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise BackendUnavailable(RAY_MISSING) from None
    # Ray Data's progress and "execution finished" lines on the console would mix with zoo's
    # own; its log file in the Ray session folder keeps them all.
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.ERROR)
    return ray


def actors_backend(backend: str) -> str:
    """The backend the actors run a model on (ONNX Runtime) for the one a command was given:
    ``keras`` (the default) or ``onnx`` means its verified export; any other backend runs in
    the command's process only, and is refused in one line."""
    if backend not in ("keras", "onnx"):
        raise ZooError(
            f"--engine ray runs ONNX Runtime in each actor; --backend {backend} runs in this "
            "process only: give one or the other"
        )
    return "onnx"


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the actor pool is (``zoo.cli.options.add_engine_options``)."""

    address: str | None = None
    """The cluster (None: ``RAY_ADDRESS``, else a Ray started here)."""
    connect_timeout: float = CONNECT_TIMEOUT_S
    actors: int | None = None
    """The pool's size (None: as many as the cluster's CPUs, or GPUs, allow)."""
    threads: int = 1
    """CPUs of each actor (ONNX Runtime's threads there)."""
    gpus: float = 0
    ray_logs: bool = False


def connect(options: RayOptions):
    """Ray, joined to the cluster ``options`` name or started here (unless this process is
    in one already); whether a pool must fit this machine (nothing else will join)."""
    ray = import_ray()
    if options.threads < 1 or (options.actors is not None and options.actors < 1):
        raise ZooError("threads and actors must each be at least 1")
    address = options.address or os.environ.get("RAY_ADDRESS")
    started_here = not ray.is_initialized() and not address
    if not ray.is_initialized():
        start_or_join(ray, address, options.connect_timeout, options.ray_logs)
    return ray, started_here


def predict(
    model: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    *,
    address: str | None = None,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    actors: int | None = None,
    threads: int = 1,
    gpus: float = 0,
    batch_size: int = 32,
    top: int = 5,
    output: str | os.PathLike | None = None,
    preserve_order: bool = False,
    weights: str = "imagenet",
    provider: str = "auto",
    overrides: InputOverrides | None = None,
    fast_decode: bool = False,
    ray_logs: bool = False,
) -> Iterator[dict]:
    """Classify ``inputs`` on a Ray cluster, yielding one record per input file.

    ``model``: a zoo-exported .onnx file, or a registered model's name (its cached export, as
    the ``onnx`` backend uses it, made on first use). ``inputs``: files, folders and glob
    patterns as for ``zoo predict``, and URIs (``s3://``, ``gs://``, ``file://``...) of files
    or folders. ``address``: the cluster (default: ``RAY_ADDRESS``, else a Ray started here).
    ``actors``: the pool's size (default: as many as the cluster's CPUs, or GPUs, allow);
    each has ``threads`` CPUs and ``gpus`` GPUs. The records are those ``zoo predict --jsonl``
    prints, in no particular order unless ``preserve_order``. With ``output`` (a folder) they
    are also written there, to ``predictions.jsonl``, which appears only once all are in.
    Ray's workers' output is not printed here; its own log, with ``ray_logs`` only.

    Setting up (listing the inputs, starting or joining Ray) happens here, so that its errors
    come at once; the work, as the records are taken.
    """
    import_ray()
    if threads < 1 or batch_size < 1 or top < 1 or (actors is not None and actors < 1):
        raise ZooError("threads, batch size, top and actors must each be at least 1")
    model = model_bytes(str(model), weights)
    files = list_inputs(inputs)
    options = RayOptions(address, connect_timeout, actors, threads, gpus, ray_logs)
    job = RayRun.started(options, model, files, provider)
    settings = dict(top=top, overrides=overrides, fast_decode=fast_decode)
    records = job.records(batch_size, preserve_order, settings)
    return records if output is None else write_records(records, Path(output))


def start_or_join(ray, address: str | None, timeout: float, ray_logs: bool) -> None:
    """Join the cluster at ``address``, which gets ``timeout`` seconds to answer, or with no
    address start a Ray of our own ("local": without it, ``ray.init`` joins the last cluster
    started on this machine, and waits forever if that one has stopped)."""
    options = dict(
        include_dashboard=False,
        log_to_driver=False,  # the workers' output would go to stdout, among the records
        logging_level=logging.INFO if ray_logs else logging.CRITICAL,
    )
    if not address:
        # In this (the main) thread: a driver that starts its own Ray from another thread is
        # cut from the object store at its first use (Ray 2.60: "connection to the plasma
        # store is failed. Terminate the process"). Starting one is Python that waits on its
        # processes, so Ctrl-C and SIGTERM still land.
        zoos_sigterm = signal.getsignal(signal.SIGTERM)
        try:
            ray.init(address="local", **options)
        except (Exception, SystemExit) as error:  # e.g. its GCS late on a loaded machine
            raise ZooError(
                f"could not start a local Ray: {describe_exception(error)}; start one with "
                "'ray start --head' and pass --address, or use --engine local"
            ) from None
        finally:
            signal.signal(signal.SIGTERM, zoos_sigterm)  # ray.init put its own in its place
        return
    deadline = time.monotonic() + timeout
    check_listening(address, timeout)
    try:
        init_interruptibly(ray, deadline - time.monotonic(), address=address, **options)
    except TimeoutError:
        raise ClusterUnreachable(address, f"no answer within {timeout:g} s") from None
    except ConnectionError as error:
        raise ClusterUnreachable(address, describe_exception(error)) from None


def check_listening(address: str, timeout: float) -> None:
    """A ``ClusterUnreachable`` at once, with the reason, if nothing listens at ``address``
    (``HOST:PORT`` or ``ray://HOST:PORT``; other forms, such as "auto", are Ray's to read)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except TimeoutError:
        raise ClusterUnreachable(address, f"no answer within {timeout:g} s") from None
    except ConnectionRefusedError:
        raise ClusterUnreachable(address, "connection refused") from None
    except socket.gaierror:
        raise ClusterUnreachable(address, f"unknown host {host}") from None
    except OSError as error:
        raise ClusterUnreachable(address, error.strerror or str(error)) from None


def init_interruptibly(ray, timeout: float | None, **options) -> None:
    """``ray.init(**options)`` in a thread, waited for ``timeout`` seconds at most (None: as
    long as it takes), the main thread free for Ctrl-C and SIGTERM meanwhile. A
    ``TimeoutError`` when time is up; the thread, a daemon, is then left to itself."""
    failure: list[Exception] = []

    def init() -> None:
        try:
            ray.init(**options)
        except Exception as error:
            failure.append(error)
        except SystemExit as stop:  # it would end this thread alone, silently
            failure.append(RuntimeError(f"ray.init exited with status {stop.code}"))

    thread = threading.Thread(target=init, name="zoo-ray-init", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError
    if failure:
        raise failure[0]


def model_bytes(model: str, weights: str) -> bytes:
    """The .onnx file the actors run: a file or URI given, or a registered model's cached
    export (made here on first use, which needs TensorFlow here, never in the actors).

    Opened once here too, so that a file zoo cannot run is one line now, not an actor's death.
    """
    from zoo.runtime.onnx_file import load_onnx
    from zoo.sources.resolver import onnx_file

    model = onnx_file(model, weights)
    if "://" not in model:
        load_onnx(model, "cpu", threads=1)
        return Path(model).read_bytes()
    data = _read_uri(model)
    with tempfile.TemporaryDirectory(prefix="zoo-model-") as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(data)
        try:
            load_onnx(path, "cpu", threads=1)
        except ZooError as error:
            raise ZooError(str(error).replace(str(path), model)) from None
    return data


def _read_uri(uri: str) -> bytes:
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
        with filesystem.open_input_stream(path) as stream:
            return stream.read()
    except (OSError, ValueError) as error:
        raise ZooError(f"{uri}: cannot read ({error})") from None


def list_inputs(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Local files, folders and patterns as ``zoo predict`` expands them; URIs listed through
    pyarrow's filesystems (those Ray Data reads with), a folder recursively. In order given."""
    files: list[str] = []
    local: list[str] = []
    for argument in map(str, inputs):
        if "://" not in argument:
            local.append(argument)
            continue
        files += expand_inputs(local)
        local = []
        files += _list_uri(argument)
    return files + expand_inputs(local)


def _list_uri(uri: str) -> list[str]:
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(path)
        if info.type == fs.FileType.File:
            return [uri]
        if info.type != fs.FileType.Directory:
            raise ZooError(f"{uri}: no such file or folder")
        found = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
    except (OSError, ValueError) as error:  # pyarrow's errors for unknown schemes, access...
        raise ZooError(f"{uri}: cannot list ({error})") from None
    scheme = uri.split("://", 1)[0]
    files = sorted(
        f"{scheme}://{item.path}"
        for item in found
        if item.type == fs.FileType.File and Path(item.path).suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise ZooError(f"{uri}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


class RayRun:
    """One run over the inputs: the files, and the actor pool that classifies them.

    A subclass runs other work the same way: ``worker`` is its actors' class, ``rows`` what
    each input is to them, ``unpack`` the records in their output, and ``key`` the field that
    names each input in a row and in its record, by which every record is counted."""

    key = "image"

    def __init__(self, ray, model: bytes, files: list, actors, threads, gpus, provider):
        self.ray = ray
        self.files = files
        self.model_ref = ray.put(model)  # to the actors through the object store
        self.threads, self.gpus = threads, gpus
        self.provider = ("cuda" if gpus else "cpu") if provider == "auto" else provider
        self.actors = actors or self.default_actors()

    @classmethod
    def started(cls, options: RayOptions, model: bytes, files: list, provider: str) -> RayRun:
        """A run on the cluster ``options`` name (joined or started now); the pool checked
        against this machine when Ray was started here (nothing will join: a pool that does
        not fit would wait forever)."""
        ray, started_here = connect(options)
        job = cls(ray, model, files, options.actors, options.threads, options.gpus, provider)
        if started_here:
            job.check_fits()
        return job

    def default_actors(self) -> int:
        """As many actors as the cluster's CPUs (or GPUs, for GPU actors) allow."""
        resources = self.ray.cluster_resources()
        if self.gpus:
            return max(1, int(resources.get("GPU", 0) // self.gpus))
        return max(1, int(resources.get("CPU", 1) // self.threads))

    def check_fits(self) -> None:
        """A ``ZooError`` if the cluster cannot hold the pool asked for."""
        have = self.ray.cluster_resources()
        for resource, each in (("CPU", self.threads), ("GPU", self.gpus)):
            if each and have.get(resource, 0) < self.actors * each:
                raise ZooError(
                    f"{self.actors} actors x {each:g} {resource} need "
                    f"{self.actors * each:g} {resource}s; this machine has "
                    f"{have.get(resource, 0):g} (fewer --actors, or fewer --threads)"
                )

    def records(self, batch_size: int, preserve_order: bool, options: dict) -> Iterator[dict]:
        """Every input's record, counted: one each, none lost, none twice; in input order if
        ``preserve_order``."""
        rows = self.rows()
        expected = Counter(row[self.key] for row in rows)
        seen = 0
        if rows:
            for record in self.classified(rows, batch_size, preserve_order, options):
                expected[record[self.key]] -= 1
                seen += 1
                yield record
        missing = [name for name, count in expected.items() if count > 0]
        twice = [name for name, count in expected.items() if count < 0]
        if seen != len(rows) or missing or twice:
            raise LostRecords(
                f"Ray returned {seen} records for {len(rows)} inputs"
                + (f"; none for {len(missing)}, first {missing[0]}" if missing else "")
                + (f"; more than one for {len(twice)}, first {twice[0]}" if twice else "")
            )

    def rows(self) -> list[dict]:
        """What the actors get of each input: its name, and where to read it."""
        return [{"image": path, "source": actor_source(path)} for path in self.files]

    def worker(self) -> type:
        return Classifier

    def unpack(self, batch: dict) -> Iterator[dict]:
        """The records in a batch of the actors' output."""
        for line in batch["record"]:
            yield json.loads(line)

    def classified(
        self, rows: list[dict], batch_size: int, preserve_order: bool, options: dict
    ) -> Iterator[dict]:
        """The records, from the actor pool."""
        context = self.ray.data.DataContext.get_current()
        context.execution_options.preserve_order = preserve_order
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        dataset = self.dataset(rows, batch_size, options)
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            yield from self.unpack(batch)

    def dataset(self, rows: list[dict], batch_size: int, options: dict):
        """The Ray Data pipeline: the rows, worked on by the actor pool (each actor reads the
        bytes of the files in its batch and decodes them)."""
        ray = self.ray
        return ray.data.from_items(rows).map_batches(
            self.worker(),
            fn_constructor_kwargs=dict(
                model=(self.model_ref,), provider=self.provider, threads=self.threads, **options
            ),
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            num_cpus=self.threads,
            num_gpus=self.gpus,
        )


def actor_source(path: str) -> str:
    """Where an actor reads a file: a URI as it is, a local path made absolute (an actor's
    working folder is not the driver's)."""
    return path if "://" in path else os.path.abspath(path)


class Actor:
    """What every actor of a pool does: hold the model its constructor is given (the bytes
    come through the object store; ONNX Runtime loads from a file), and read the files of a
    batch, several at a time (local files as zoo reads them, so that a missing or unreadable
    file gets zoo's usual message; URIs through pyarrow's filesystems)."""

    def __init__(self, model, provider, threads):
        import ray

        with tempfile.TemporaryDirectory(prefix="zoo-actor-") as folder:
            path = Path(folder) / "model.onnx"
            path.write_bytes(ray.get(model[0]))
            self.model = self.load(path, provider, threads)
        self.decoders = ThreadPoolExecutor(threads, thread_name_prefix="zoo-decode")
        self.readers = ThreadPoolExecutor(READERS, thread_name_prefix="zoo-read")

    def load(self, path: Path, provider: str, threads: int):
        """The model, from the file its bytes were written to: a zoo-exported one here."""
        from zoo.runtime.onnx_file import load_onnx

        return load_onnx(path, provider, threads)

    def contents(self, batch: dict) -> list[bytes | ImageError]:
        """The bytes of each file of the batch, or why they cannot be read."""
        return list(self.readers.map(self.read, map(str, batch["source"])))

    def read(self, source: str) -> bytes | ImageError:
        """A file's bytes, or why they cannot be read."""
        try:
            if "://" not in source:
                return read_bytes(source)
            from pyarrow import fs

            filesystem, path = fs.FileSystem.from_uri(source)
            with filesystem.open_input_stream(path) as stream:
                return stream.read()
        except ImageError as error:
            return error
        except (OSError, ValueError) as error:
            return ImageError(source, f"cannot read ({error})")


class Classifier(Actor):
    """One actor of the pool: a batch of files in, one JSON record per file out. It decodes
    the files with zoo's image reading in ``threads`` threads, and runs the model."""

    def __init__(self, model, provider, threads, top, overrides, fast_decode):
        super().__init__(model, provider, threads)
        self.input = resolve(self.model.input, overrides)
        self.top, self.fast_decode = top, fast_decode

    def __call__(self, batch: dict) -> dict:
        records = batch_records(self.model, self.decoded(batch), self.top)
        return {"record": [jsonio.dumps(record) for record in records]}

    def decoded(self, batch: dict) -> list[Decoded]:
        images = [str(image) for image in batch["image"]]
        return list(self.decoders.map(self.decode, images, self.contents(batch)))

    def decode(self, image: str, content: bytes | ImageError) -> Decoded:
        if isinstance(content, ImageError):
            return Decoded(image, error=ImageError(image, content.reason))
        try:
            return decode(image, self.input, self.fast_decode, data=content)
        except Exception as error:  # a decoder's own bug: still this file's record, not a crash
            return Decoded(image, error=ImageError(image, describe_exception(error)))


def write_records(records: Iterable[dict], folder: Path) -> Iterator[dict]:
    """``records`` as they pass, written to ``folder/predictions.jsonl`` (in place once all
    are written: an interrupted run leaves no partial file)."""
    from zoo.base.files import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "predictions.jsonl") as temporary, temporary.open("w") as out:
        for record in records:
            out.write(jsonio.dumps(record) + "\n")
            yield record
