"""``zoo serve`` under load: dynamic micro-batching against batch-1 serving, side by side.

For each mode, a fresh ``zoo serve MODEL.onnx`` on loopback with the same settings except
``--max-batch-size`` (the given one, then 1); ``--clients`` threads, each with its own keep-alive
connection, POST the same photo back to back for ``--warmup`` seconds (not counted) and then
``--duration`` seconds. Reported per mode: requests/s, latency p50/p95/p99, errors (any answer
but 200, or a failed connection), the mean batch size (from the server's /metrics) and the
server's peak RSS (from the kernel, ``wait4``, after it stops). The clients run on the same
machine as the server and take some of its CPU, alike in both modes.

    python benchmarks/serve_load.py mobilenet.onnx [--clients 16] [--duration 30] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from zoo.base.printing import print_table
from zoo.runtime.bench import machine


@dataclass
class Outcome:
    mode: str
    max_batch_size: int
    requests: int
    errors: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_batch: float
    peak_rss_mib: float


class Server:
    """``zoo serve`` in a subprocess on a free port; ``stop()`` returns its peak RSS in MiB."""

    def __init__(self, model: str, options: list[str], log: Path):
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "zoo", "serve", model, "--port", "0", *options],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.port = self._port()

    def _port(self) -> int:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = re.search(r"zoo: serving .* at http://[^:]+:(\d+)/", self.log.read_text())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        sys.exit(f"serve_load: zoo serve did not start:\n{self.log.read_text()}")

    def get(self, path: str) -> str:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path)
            return connection.getresponse().read().decode()
        finally:
            connection.close()

    def stop(self) -> float:
        self.process.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = 0  # reaped here, with its resource usage
        return usage.ru_maxrss / 1024


def client(port: int, body: bytes, start: float, stop: float, latencies: list, errors: list):
    """POST ``body`` back to back until ``stop``; record what finished after ``start``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "image/jpeg"}
    while (began := time.monotonic()) < stop:
        try:
            connection.request("POST", "/v1/models/mobilenet:predict", body, headers)
            response = connection.getresponse()
            response.read()
            failed = response.status != 200
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            failed = True
        if began >= start:
            (errors if failed else latencies).append(time.monotonic() - began)
    connection.close()


def load(server: Server, body: bytes, clients: int, warmup: float, duration: float):
    start = time.monotonic() + warmup
    stop = start + duration
    latencies: list[float] = []
    errors: list[float] = []
    threads = [
        threading.Thread(target=client, args=(server.port, body, start, stop, latencies, errors))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, len(errors)


def run_mode(args, mode: str, max_batch_size: int, body: bytes, folder: Path) -> Outcome:
    options = [
        "--provider", args.provider,
        "--max-batch-size", str(max_batch_size),
        "--batch-timeout-ms", str(args.batch_timeout_ms),
        "--concurrent-batches", str(args.workers),
        "--threads", str(args.threads),
        "--max-queue", str(max(256, 4 * args.clients)),
    ]  # fmt: skip
    server = Server(args.model, options, folder / f"serve-{mode}.log")
    try:
        latencies, errors = load(server, body, args.clients, args.warmup, args.duration)
        metrics = server.get("/metrics")
    finally:
        peak_rss = server.stop()
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Outcome(
        mode=mode,
        max_batch_size=max_batch_size,
        requests=len(latencies),
        errors=errors,
        requests_per_s=len(latencies) / args.duration,
        p50_ms=cuts[49] * 1000,
        p95_ms=cuts[94] * 1000,
        p99_ms=cuts[98] * 1000,
        mean_batch=_metric(metrics, "zoo_batch_size_sum")
        / _metric(metrics, "zoo_batch_size_count"),
        peak_rss_mib=peak_rss,
    )


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a zoo-exported MobileNet .onnx file (served as mobilenet)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--duration", type=float, default=30, help="seconds measured per mode")
    parser.add_argument("--warmup", type=float, default=3, help="seconds not counted first (3)")
    parser.add_argument("--image", help="the photo to POST (default: zoo's sample parrot.jpg)")
    parser.add_argument("--max-batch-size", type=int, default=32, help="for the batching mode (32)")
    parser.add_argument("--batch-timeout-ms", type=float, default=0, help="zoo serve's (0)")
    parser.add_argument("--workers", type=int, default=1, help="zoo serve's, both modes (1)")
    parser.add_argument(
        "--threads", type=int, default=0, help="ONNX Runtime threads, both modes (0: default)"
    )
    parser.add_argument("--provider", default="cpu", help="zoo serve's, both modes (cpu)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()

    image = Path(args.image) if args.image else resources.files("zoo") / "data/samples/parrot.jpg"
    body = image.read_bytes()
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"serve-load-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    outcomes = [
        run_mode(args, "batching", args.max_batch_size, body, folder),
        run_mode(args, "batch-1", 1, body, folder),
    ]
    ratio = outcomes[0].requests_per_s / outcomes[1].requests_per_s
    if args.json:
        document = {
            "machine": machine(),
            "load_average_before": load_before,
            "settings": vars(args),
            "modes": [asdict(outcome) for outcome in outcomes],
            "throughput_ratio": ratio,
        }
        print(json.dumps(document, indent=2))
        return
    about = machine()
    print(
        f"{about['cpu']} ({about['cores']} cores), load average {load_before[0]:.2f} before; "
        f"{args.clients} clients x {args.duration:g} s per mode, {image.name} "
        f"({len(body) // 1024} KiB); workers {args.workers}, ONNX Runtime threads "
        f"{args.threads or 'default'}, batch timeout {args.batch_timeout_ms:g} ms"
    )
    header = ["MODE", "MAX BATCH", "REQUESTS", "REQ/S", "P50 MS", "P95 MS", "P99 MS"]
    header += ["ERRORS", "MEAN BATCH", "PEAK RSS MIB"]
    print_table(
        header,
        [
            [
                o.mode,
                str(o.max_batch_size),
                str(o.requests),
                f"{o.requests_per_s:.1f}",
                f"{o.p50_ms:.1f}",
                f"{o.p95_ms:.1f}",
                f"{o.p99_ms:.1f}",
                str(o.errors),
                f"{o.mean_batch:.1f}",
                f"{o.peak_rss_mib:.0f}",
            ]
            for o in outcomes
        ],
    )
    print(f"throughput, batching / batch-1: {ratio:.2f}x")


if __name__ == "__main__":
    main()
