"""The server's knobs, with the defaults ``zoo serve`` documents in its --help."""

from __future__ import annotations

from dataclasses import dataclass

from zoo.base.errors import ZooError


@dataclass(frozen=True)
class ServeSettings:
    max_batch_size: int = 8
    """Images per ONNX Runtime run, at most; 1 serves each request on its own. On 2 CPU cores
    an image costs ONNX Runtime no less in a batch of 32 than in one of 8, and a server whose
    batches reach 32 holds more memory: measured side by side in two runs of
    ``benchmarks/serve_peers.py``, 8 gave +12% and -5% requests/s at 16 clients and +15% and
    +3% at 64 against 32, in 252-316 MiB of peak RSS instead of 592-747."""
    batch_timeout_ms: float = 0.0
    """How long a batch waits for more requests after its first one, at most. 0: never: a
    request that finds the model free runs at once, and the requests that arrive while a batch
    runs make up the next one."""
    max_queue: int = 256
    """Images accepted and not yet answered, per model; beyond it requests get 503."""
    queue_timeout_ms: float = 0.0
    """How long an image may wait for its batch to start; past it its request gets 503.
    0: no limit (``max_queue`` still bounds the wait)."""
    max_body_bytes: int = 10 * 1024 * 1024
    """The largest request body accepted; larger ones get 413."""
    body_timeout_s: float = 30.0
    """How long a request's body may take to arrive (and be parsed); slower ones get 408."""
    max_body_readers: int = 256
    """Requests reading their bodies at once; beyond it requests get 503 straight away, so
    that clients trickling bodies cannot hold an unbounded number of connections."""
    header_timeout_s: float = 10.0
    """How long a connection may take to send a request's line and headers, from its opening
    (or its previous answer); slower ones are closed. A request's headers are a few hundred
    bytes, one packet: 10 s is ample for the slowest link, and short enough that clients
    trickling headers cannot pile up."""
    max_connections: int = 1000
    """Connections open at once; past it a new one is answered 503 before anything is read.
    zoo raises its file-descriptor limit to fit (``zoo.serve.connections``)."""
    workers: int = 1
    """Batches of one model that run at the same time, each in its own thread."""
    decode_threads: int = 0
    """Threads that decode and resize images; 0: one per CPU."""
    max_request_pixels: int = 64_000_000
    """Pixels of one request's images together, read from their headers before decoding;
    beyond it the request gets 413. A 50-megapixel phone photo fits; the models take well
    under a megapixel, so more is cost, not accuracy."""
    max_decoding_pixels: int = 128_000_000
    """Pixels being decoded or waiting for a decoding thread, all requests together; beyond it
    requests get 503. Decoded, a pixel takes 1 to 5 bytes (4 for RGB), so this bounds the
    decoding memory to about 512 MB, and the wait for a decoding thread to about the time it
    takes to decode that much."""
    retry_after_s: int = 1
    """What a 503 tells the client to wait before trying again."""

    def __post_init__(self):
        if self.max_request_pixels > self.max_decoding_pixels:
            raise ZooError(
                f"--max-request-megapixels ({self.max_request_pixels / 1e6:g}) is more than "
                f"--max-decoding-megapixels ({self.max_decoding_pixels / 1e6:g}): a request "
                "that large could never be decoded"
            )
