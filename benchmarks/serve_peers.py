"""``zoo serve`` against MLServer and KServe's Python ModelServer, side by side in one run.

Each server serves the same embedded-preprocessing ``.onnx`` (``zoo export ... --embed-
preprocessing``) on loopback, from its own virtualenv, with ONNX Runtime's intra-op threads set
equal (``--threads``): zoo with its defaults (batches gathered only while the model is busy);
MLServer with the custom runtime in ``benchmarks/peers/`` and adaptive batching (up to 32
within 5 ms); KServe with the same runtime code (its Python server has no batcher). One
asyncio load generator (keep-alive HTTP/1.1, one connection per client) sends the photos as
base64 BYTES in Open Inference Protocol JSON, the one encoding all three accept, and asks for
each image's top 5 (zoo: the classification extension; the peers' runtime answers so anyway),
at 1, 16 and 64 concurrent clients, ``--requests`` per level after a warm-up. The servers all
run at once (an idle one costs nothing) and take turns, level by level, ``--repeats`` times,
so that a machine whose speed drifts (a shared one) drifts alike for all. Reported per server
and level: the median requests/s over the repeats, p50 and p99 latency over all of them,
errors (any answer but 200, or a failed connection), and the server's peak RSS (the sum of
VmHWM over its process tree); and the model-only ceiling: ONNX Runtime's ``session.run`` on
decoded pixels at its best batch size, measured between the repeats. The load generator
shares the machine's cores with the servers. ``--variant "LABEL=--option=value,..."`` adds
a zoo server with other options.

    python benchmarks/serve_peers.py mobilenet-uint8.onnx [--peer-venvs /work/peer-venvs]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from zoo.base.printing import print_table
from zoo.runtime.bench import machine

PEERS = Path(__file__).resolve().parent / "peers"
INFER = "/v2/models/mobilenet/infer"


@dataclass
class Level:
    server: str
    clients: int
    requests: int
    errors: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A server in a subprocess, its model ready (``/v2/models/mobilenet/ready``) once
    constructed: MLServer says the server is ready before its models are loaded."""

    def __init__(
        self, name: str, command: list[str], port: int, env: dict, log: Path, zoo: bool = False
    ):
        self.name, self.port, self.log = name, port, log
        self.zoo = zoo
        """zoo answers the top 5 when asked (the classification extension); the peers' runtime
        answers them anyway."""
        with log.open("w") as output:  # in the scratch folder, where MLServer writes .metrics/
            self.process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                cwd=log.parent,
            )
        deadline = time.monotonic() + 180
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"serve_peers: {name} did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
                connection.sendall(b"GET /v2/models/mobilenet/ready HTTP/1.1\r\nHost: x\r\n\r\n")
                return connection.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def peak_rss_mib(self) -> float:
        """The sum of the peak resident memory of the server and every process under it."""
        return sum(_vm_hwm_kib(pid) for pid in _tree(self.process.pid)) / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _vm_hwm_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) if found else 0


def start_zoo(args, folder: Path, label: str = "zoo", options: tuple[str, ...] = ()) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "zoo", "serve", f"mobilenet={args.model}", "--port", str(port)]
    command += ["--provider", "cpu", "--threads", str(args.threads), *options]
    return Server(label, command, port, {}, folder / f"{label.replace(' ', '-')}.log", zoo=True)


def start_mlserver(args, folder: Path) -> Server:
    port = free_port()
    (folder / "mlserver").mkdir()
    settings = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
    (folder / "mlserver" / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": "mobilenet",
        "implementation": "mlserver_runtime.OnnxClassifier",
        "max_batch_size": 32,
        "max_batch_time": 0.005,
        "parameters": {"uri": str(Path(args.model).resolve())},
    }
    (folder / "mlserver" / "model-settings.json").write_text(json.dumps(model_settings))
    python = Path(args.peer_venvs) / "mlserver" / "bin"
    command = [str(python / "mlserver"), "start", str(folder / "mlserver")]
    env = {"PYTHONPATH": str(PEERS), "PEER_ORT_THREADS": str(args.threads)}
    return Server("MLServer", command, port, env, folder / "mlserver.log")


def start_kserve(args, folder: Path) -> Server:
    port = free_port()
    python = Path(args.peer_venvs) / "kserve" / "bin" / "python"
    command = [str(python), str(PEERS / "kserve_runtime.py"), str(Path(args.model).resolve())]
    command += ["--http_port", str(port), "--grpc_port", str(free_port()), "--workers", "1"]
    env = {"PYTHONPATH": str(PEERS), "PEER_ORT_THREADS": str(args.threads)}
    return Server("KServe", command, port, env, folder / "kserve.log")


STARTERS = {"zoo": start_zoo, "mlserver": start_mlserver, "kserve": start_kserve}


def bodies(photos: list[bytes], top_k_parameter: bool) -> list[bytes]:
    """One Open Inference Protocol JSON request per photo: its base64 as a BYTES tensor."""
    requests = []
    for photo in photos:
        tensor = {
            "name": "image_bytes",
            "shape": [1],
            "datatype": "BYTES",
            "data": [base64.b64encode(photo).decode()],
        }
        document: dict = {"inputs": [tensor]}
        if top_k_parameter:
            document["outputs"] = [{"name": "probabilities", "parameters": {"classification": 5}}]
        requests.append(json.dumps(document).encode())
    return requests


async def post(reader, writer, port: int, body: bytes) -> int:
    writer.write(
        f"POST {INFER} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def drive(port: int, requests: list[bytes], clients: int, total: int):
    """``clients`` connections sending ``total`` requests between them, back to back."""
    latencies: list[float] = []
    errors = 0
    sent = 0

    async def client(offset: int) -> None:
        nonlocal errors, sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while sent < total:
                body = requests[(sent + offset) % len(requests)]
                sent += 1
                started = time.perf_counter()
                try:
                    status = await post(reader, writer, port, body)
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, errors, time.perf_counter() - started


def run_level(server: Server, requests: list[bytes], clients: int, total: int):
    latencies, errors, seconds = asyncio.run(drive(server.port, requests, clients, total))
    return latencies, errors, len(latencies) / seconds


def summarise(server: str, clients: int, runs: list) -> Level:
    latencies = sorted(t for run in runs for t in run[0])
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Level(
        server,
        clients,
        sum(len(run[0]) + run[1] for run in runs),
        sum(run[1] for run in runs),
        statistics.median(run[2] for run in runs),
        cuts[49] * 1000,
        cuts[98] * 1000,
    )


def ceiling(model: str, photos: list[bytes], threads: int, batch_sizes: list[int]) -> dict:
    """ONNX Runtime alone on decoded pixels: images/s at each batch size, and the best."""
    import onnxruntime as ort

    from zoo.runtime.api import load
    from zoo.runtime.images import decode_to_size, open_lazily

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    config = load(model, provider="cpu").input  # what zoo serve makes of the photos
    pixels = [decode_to_size(open_lazily(p, "photo"), "photo", config) for p in photos]
    rates = {}
    for size in batch_sizes:
        batch = np.stack([pixels[i % len(pixels)] for i in range(size)])
        session.run(None, {"image": batch})
        runs, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < 3:
            session.run(None, {"image": batch})
            runs += 1
        rates[size] = runs * size / elapsed
    return {"images_per_s": rates, "best": max(rates.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an embedded-preprocessing MobileNet .onnx exported by zoo")
    parser.add_argument("--photos", help="a folder of photos (default: zoo's sample photos)")
    parser.add_argument("--clients", default="1,16,64", help="concurrency levels (1,16,64)")
    parser.add_argument(
        "--requests", type=int, default=300, help="requests per level and turn (300)"
    )
    parser.add_argument("--warmup-requests", type=int, default=60, help="not counted (60)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads, all (2)")
    parser.add_argument("--servers", default="zoo,mlserver,kserve", help="which, in order")
    parser.add_argument("--peer-venvs", default="/work/peer-venvs", help="mlserver/, kserve/")
    parser.add_argument("--repeats", type=int, default=3, help="turns per level (3)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help='one more zoo server: "LABEL=--option=value,..." (repeatable)',
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]

    folder = Path(args.photos) if args.photos else resources.files("zoo") / "data/samples"
    photos = [p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix.lower() == ".jpg"]
    load_before = os.getloadavg()
    ceilings, runs, peaks = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="serve-peers-") as scratch:
        servers = []
        try:
            for name in args.servers.split(","):
                servers.append(STARTERS[name](args, Path(scratch)))
            for variant in args.variant:
                label, _, options = variant.partition("=")
                servers.append(start_zoo(args, Path(scratch), label, tuple(options.split(","))))
            requests = {s.name: bodies(photos, s.zoo) for s in servers}
            for server in servers:
                run_level(server, requests[server.name], 4, args.warmup_requests)
            for _ in range(args.repeats):
                ceilings.append(ceiling(args.model, photos, args.threads, [1, 8, 16, 32]))
                for clients in args.clients:
                    for server in servers:
                        found = run_level(server, requests[server.name], clients, args.requests)
                        runs.setdefault((server.name, clients), []).append(found)
            peaks = {server.name: server.peak_rss_mib() for server in servers}
        finally:
            for server in servers:
                server.stop()
    levels = [summarise(name, clients, found) for (name, clients), found in runs.items()]
    levels.sort(key=lambda level: (list(peaks).index(level.server), level.clients))
    limit = {
        "images_per_s": {
            size: statistics.median(c["images_per_s"][size] for c in ceilings)
            for size in ceilings[0]["images_per_s"]
        }
    }
    limit["best"] = max(limit["images_per_s"].values())
    if args.json:
        document = {
            "machine": machine(),
            "load_average_before": load_before,
            "settings": {k: v for k, v in vars(args).items()},
            "photos": len(photos),
            "ceiling": limit,
            "levels": [asdict(level) for level in levels],
            "peak_rss_mib": peaks,
        }
        print(json.dumps(document, indent=2))
        return
    about = machine()
    print(
        f"{about['cpu']} ({about['cores']} cores), load average {load_before[0]:.2f} before; "
        f"{len(photos)} photos, {args.requests} requests per level x {args.repeats} turns, ONNX "
        f"Runtime threads {args.threads}; model alone (median of {args.repeats}): "
        f"{limit['best']:.0f} images/s at its best batch size "
        f"({', '.join(f'{s}: {r:.0f}' for s, r in limit['images_per_s'].items())})"
    )
    header = ["SERVER", "CLIENTS", "REQUESTS", "REQ/S", "P50 MS", "P99 MS", "ERRORS"]
    header += ["OF CEILING", "PEAK RSS MIB"]
    print_table(
        header,
        [
            [
                level.server,
                str(level.clients),
                str(level.requests),
                f"{level.requests_per_s:.1f}",
                f"{level.p50_ms:.1f}",
                f"{level.p99_ms:.1f}",
                str(level.errors),
                f"{level.requests_per_s / limit['best']:.0%}",
                f"{peaks[level.server]:.0f}",
            ]
            for level in levels
        ],
    )


if __name__ == "__main__":
    main()
