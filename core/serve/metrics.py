"""What ``GET /metrics`` shows, through ``prometheus_client``: requests, latency, batch sizes,
errors and queue depth, and Triton's per-model inference counters under Triton's own names.

The library rather than a hand-written exposition: it escapes label values, speaks the
OpenMetrics format to a scraper that asks for it, and aggregates across processes should
serving ever run several. Each server has its own ``CollectorRegistry``, so two apps in one
process (as in the tests) never share counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

disable_created_metrics()  # a *_created sample per series says nothing a scraper needs here

MODEL_VERSION = "1"
"""The one version of every served model, as the Open Inference Protocol and Triton name it."""

TRITON_COUNTERS = {
    "nv_inference_request_success": "Inference requests answered successfully.",
    "nv_inference_request_failure": "Inference requests that failed, by reason: REJECTED "
    "(--max-queue, --queue-timeout-ms, shutdown), BACKEND (the model's run failed), OTHER "
    "(the request was refused).",
    "nv_inference_count": "Images inferred (each request's images; not requests).",
    "nv_inference_exec_count": "Model runs (batches); nv_inference_count / "
    "nv_inference_exec_count is the mean batch size.",
    "nv_inference_request_duration_us": "Cumulative time of the inference requests answered "
    "successfully, from their arrival to their answer, in microseconds.",
    "nv_inference_queue_duration_us": "Cumulative time the images spent waiting for their "
    "batch to start, in microseconds.",
    "nv_inference_compute_infer_duration_us": "Cumulative time of the model runs, counted once "
    "for each image of the batch, in microseconds.",
}


class ServeMetrics:
    """The server's metrics, labelled by model."""

    def __init__(self):
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "zoo_requests",
            "Requests answered, by status; model is empty outside a served model's routes.",
            ("model", "status"),
            registry=registry,
        )
        self.disconnects = Counter(
            "zoo_client_disconnects",
            "Requests whose client went away before they could be answered.",
            ("model",),
            registry=registry,
        )
        self.shed_connections = Counter(
            "zoo_connections_shed",
            "Connections closed before a request: by reason, header_timeout (its request "
            "headers took longer than --header-timeout-s) or connection_limit (answered 503: "
            "--max-connections were open).",
            ("reason",),
            registry=registry,
        )
        self.errors = Counter(
            "zoo_errors",
            "Predict requests that failed, by kind.",
            ("kind", "model"),
            registry=registry,
        )
        self.latency = Histogram(
            "zoo_request_duration_seconds",
            "Predict request latency: body, decoding, queue and inference.",
            ("model",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.inference = Histogram(
            "zoo_inference_duration_seconds",
            "ONNX Runtime run time per batch.",
            ("model",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "zoo_batch_size",
            "Images per ONNX Runtime run.",
            ("model",),
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "zoo_queue_depth", "Images waiting for a batch.", ("model",), registry=registry
        )
        self.in_flight = Gauge(
            "zoo_images_in_flight",
            "Images accepted and not yet answered (bounded by --max-queue).",
            ("model",),
            registry=registry,
        )

        self.triton = TritonCounters()
        registry.register(self.triton)
        self.decoding_pixels = Gauge(
            "zoo_decoding_pixels",
            "Pixels of the images being decoded or waiting for a decoding thread "
            "(bounded by --max-decoding-megapixels).",
            registry=registry,
        )

    def for_model(self, model: str) -> ModelMetrics:
        return ModelMetrics(self, model)

    def answered(self, model: str, seconds: float, failure: str | None) -> None:
        """An inference request to a served model, answered; ``failure``: its Triton reason
        (REJECTED, BACKEND, OTHER), None when it succeeded."""
        if failure is None:
            self.triton.add("nv_inference_request_success", model)
            self.triton.add("nv_inference_request_duration_us", model, seconds * 1e6)
        else:
            self.triton.add("nv_inference_request_failure", model, reason=failure)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition a scraper asked for (its ``Accept`` header), and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class TritonCounters:
    """Triton's counters, under Triton's exact names and labels (``model``, ``version``).

    ``prometheus_client`` writes a counter's samples as ``NAME_total``, which would break the
    dashboards and alerts written against Triton; so these are written as "untyped" families,
    whose sample names are their own. They change only in the event loop's thread."""

    def __init__(self):
        self.values: dict[str, dict[tuple[str, ...], float]] = defaultdict(dict)

    def add(self, name: str, model: str, amount: float = 1.0, reason: str | None = None) -> None:
        key = (model, MODEL_VERSION) if reason is None else (model, MODEL_VERSION, reason)
        series = self.values[name]
        series[key] = series.get(key, 0.0) + amount

    def collect(self):
        for name, documentation in TRITON_COUNTERS.items():
            family = Metric(name, documentation, "unknown")
            for key, value in sorted(self.values.get(name, {}).items()):
                labels = dict(zip(("model", "version", "reason"), key, strict=False))
                family.add_sample(name, labels, value)
            yield family


@dataclass(frozen=True)
class ModelMetrics:
    """The metrics of one served model, as its batcher counts them."""

    metrics: ServeMetrics
    model: str

    @property
    def in_flight(self):
        return self.metrics.in_flight.labels(model=self.model)

    @property
    def queue_depth(self):
        return self.metrics.queue_depth.labels(model=self.model)

    def queued(self, seconds: float) -> None:
        """Images taken into a batch after waiting ``seconds`` in all."""
        self.metrics.triton.add("nv_inference_queue_duration_us", self.model, seconds * 1e6)

    def ran(self, images: int, seconds: float) -> None:
        """A batch of ``images`` that took ``seconds`` to run (or to fail)."""
        metrics, model = self.metrics, self.model
        metrics.inference.labels(model=model).observe(seconds)
        metrics.batch_size.labels(model=model).observe(images)
        metrics.triton.add("nv_inference_count", model, images)
        metrics.triton.add("nv_inference_exec_count", model)
        metrics.triton.add("nv_inference_compute_infer_duration_us", model, seconds * 1e6 * images)
