"""What ``GET /metrics`` shows, through ``prometheus_client``: requests, latency, batch sizes,
errors and queue depth.

The library rather than a hand-written exposition: it escapes label values, speaks the
OpenMetrics format to a scraper that asks for it, and aggregates across processes should
serving ever run several. Each server has its own ``CollectorRegistry``, so two apps in one
process (as in the tests) never share counts.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

disable_created_metrics()  # a *_created sample per series says nothing a scraper needs here


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

        self.decoding_pixels = Gauge(
            "zoo_decoding_pixels",
            "Pixels of the images being decoded or waiting for a decoding thread "
            "(bounded by --max-decoding-megapixels).",
            registry=registry,
        )

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition a scraper asked for (its ``Accept`` header), and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
