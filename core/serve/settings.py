"""The server's knobs, with the defaults ``zoo serve`` documents in its --help."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeSettings:
    max_batch_size: int = 32
    """Images per ONNX Runtime run, at most; 1 serves each request on its own."""
    batch_timeout_ms: float = 5.0
    """How long a batch waits for more requests after its first one, at most."""
    max_queue: int = 256
    """Images accepted and not yet answered, per model; beyond it requests get 503."""
    max_body_bytes: int = 10 * 1024 * 1024
    """The largest request body accepted; larger ones get 413."""
    body_timeout_s: float = 30.0
    """How long a request's body may take to arrive (and be parsed); slower ones get 408."""
    max_body_readers: int = 256
    """Requests reading their bodies at once; beyond it requests get 503 straight away, so
    that clients trickling bodies cannot hold an unbounded number of connections."""
    workers: int = 1
    """Batches of one model that run at the same time, each in its own thread."""
    decode_threads: int = 0
    """Threads that decode and resize images; 0: one per CPU."""
    retry_after_s: int = 1
    """What a 503 tells the client to wait before trying again."""
