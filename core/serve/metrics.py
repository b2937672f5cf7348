"""Counters, gauges and histograms in the Prometheus text exposition format (version 0.0.4).

A few dozen lines instead of a dependency: the server only needs labelled counters, gauges and
fixed-bucket histograms, all updated from the event loop's thread, so no locking either.
"""

from __future__ import annotations

import math
from collections import defaultdict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

Labels = tuple[tuple[str, str], ...]


def _labels(values: dict[str, str]) -> Labels:
    return tuple(sorted(values.items()))


def _format(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = (
        (key, value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n"))
        for key, value in labels
    )
    return "{" + ",".join(f'{key}="{value}"' for key, value in escaped) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


class Counter:
    kind = "counter"

    def __init__(self, name: str, help: str):
        self.name, self.help = name, help
        self.values: dict[Labels, float] = defaultdict(float)

    def inc(self, amount: float = 1, **labels: str) -> None:
        self.values[_labels(labels)] += amount

    def samples(self):
        for labels, value in sorted(self.values.items()):
            yield self.name, labels, value


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        self.values[_labels(labels)] = value


class Histogram:
    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: tuple[float, ...]):
        self.name, self.help = name, help
        self.buckets = (*buckets, math.inf)
        self.counts: dict[Labels, list[int]] = {}
        self.sums: dict[Labels, float] = defaultdict(float)

    def observe(self, value: float, **labels: str) -> None:
        key = _labels(labels)
        counts = self.counts.setdefault(key, [0] * len(self.buckets))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        self.sums[key] += value

    def samples(self):
        for labels, counts in sorted(self.counts.items()):
            for bound, count in zip(self.buckets, counts, strict=True):
                yield f"{self.name}_bucket", (*labels, ("le", _number(bound))), count
            yield f"{self.name}_sum", labels, self.sums[labels]
            yield f"{self.name}_count", labels, counts[-1]


class ServeMetrics:
    """What ``GET /metrics`` shows: requests, latency, batch sizes, errors and queue depth."""

    def __init__(self):
        self.requests = Counter("zoo_requests_total", "Predict requests answered, by status.")
        self.errors = Counter("zoo_errors_total", "Predict requests that failed, by kind.")
        self.latency = Histogram(
            "zoo_request_duration_seconds",
            "Predict request latency: body, decoding, queue and inference.",
            LATENCY_BUCKETS,
        )
        self.inference = Histogram(
            "zoo_inference_duration_seconds", "ONNX Runtime run time per batch.", LATENCY_BUCKETS
        )
        self.batch_size = Histogram(
            "zoo_batch_size", "Images per ONNX Runtime run.", BATCH_SIZE_BUCKETS
        )
        self.queue_depth = Gauge("zoo_queue_depth", "Images waiting for a batch.")
        self.in_flight = Gauge(
            "zoo_images_in_flight", "Images accepted and not yet answered (bounded by --max-queue)."
        )

    def render(self) -> str:
        metrics = (
            self.requests,
            self.errors,
            self.latency,
            self.inference,
            self.batch_size,
            self.queue_depth,
            self.in_flight,
        )
        lines = []
        for metric in metrics:
            lines += [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} {metric.kind}"]
            lines += [
                f"{name}{_format(labels)} {_number(value)}"
                for name, labels, value in metric.samples()
            ]
        return "\n".join(lines) + "\n"
