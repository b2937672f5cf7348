"""The ``zoo serve`` command: exported models behind an HTTP API (see ``zoo.serve``).

Its dependencies (Starlette, uvicorn) are imported only when the command runs, so ``zoo`` and
``zoo --help`` stay light and work without the ``serve`` extra.
"""

from __future__ import annotations

from zoo.base.errors import BackendUnavailable
from zoo.cli.options import (
    FILES_AS_THEY_ARE,
    add_decode_threads,
    add_deprecated,
    add_model_references,
    add_precision,
    add_provider,
    add_threads,
    integer_at_least,
    number_between,
    option_groups,
)
from zoo.serve.settings import ServeSettings


def add_command(commands) -> None:
    defaults = ServeSettings()
    command = commands.add_parser(
        "serve",
        help="serve models over HTTP on ONNX Runtime, with dynamic micro-batching",
        description="Serve exported models over HTTP: POST an image to "
        "/v1/models/NAME:predict, or speak the Open Inference Protocol (Triton's, KServe's) at "
        "/v2; the page at / classifies a photo you drop on it. "
        "Needs the serve extra: pip install 'zoo[serve]'.",
    )
    command.add_argument(
        "models",
        nargs="+",
        metavar="MODEL_OR_ONNX",
        help="a .onnx file exported by zoo, or a model name (exported on first use, which needs "
        f"TensorFlow); NAME=... serves it under another name; {FILES_AS_THEY_ARE}",
    )
    server, batching, requests, model = option_groups(
        command, "server", "batching", "requests", "model"
    )
    server.add_argument(
        "--host", metavar="ADDRESS", default="127.0.0.1", help="address to listen on (127.0.0.1)"
    )
    server.add_argument(
        "--port",
        metavar="N",
        type=integer_at_least(0),
        default=8000,
        help="port to listen on (8000; 0: any free one)",
    )
    server.add_argument(
        "--shutdown-timeout",
        metavar="SECONDS",
        type=float,
        default=30.0,
        help="on SIGINT/SIGTERM, seconds to wait for accepted requests before cancelling (30)",
    )
    server.add_argument("--access-log", action="store_true", help="log every request")
    batching.add_argument(
        "--max-batch-size",
        metavar="N",
        type=integer_at_least(1),
        default=defaults.max_batch_size,
        help=f"images per ONNX Runtime run, at most ({defaults.max_batch_size}; 1: no batching)",
    )
    batching.add_argument(
        "--batch-timeout-ms",
        metavar="MS",
        type=float,
        default=defaults.batch_timeout_ms,
        help="how long a batch waits for more requests after its first, at most "
        f"({defaults.batch_timeout_ms:g}: never; a request that finds the model free runs at "
        "once, and those that arrive while a batch runs make up the next)",
    )
    concurrent = batching.add_argument(
        "--concurrent-batches",
        metavar="N",
        type=integer_at_least(1),
        default=defaults.workers,
        help=f"batches of one model running at once ({defaults.workers})",
    )
    add_deprecated(batching, "--workers", concurrent)
    batching.add_argument(
        "--max-queue",
        metavar="N",
        type=integer_at_least(1),
        default=defaults.max_queue,
        help="images accepted and not yet answered per model; beyond it requests get 503 "
        f"({defaults.max_queue})",
    )
    batching.add_argument(
        "--queue-timeout-ms",
        metavar="MS",
        type=number_between(0),
        default=defaults.queue_timeout_ms,
        help="how long an image may wait for its batch to start; past it its request gets 503 "
        f"({defaults.queue_timeout_ms:g}: no limit but --max-queue)",
    )
    requests.add_argument(
        "--header-timeout-s",
        metavar="SECONDS",
        type=number_between(0, low_inclusive=False),
        default=defaults.header_timeout_s,
        help="time a connection has to send a request's line and headers; slower ones are "
        f"closed ({defaults.header_timeout_s:g})",
    )
    requests.add_argument(
        "--max-connections",
        metavar="N",
        type=integer_at_least(1),
        default=defaults.max_connections,
        help="connections open at once; beyond it a new one gets 503 before it is read "
        f"({defaults.max_connections})",
    )
    requests.add_argument(
        "--max-body-mb",
        metavar="MIB",
        type=float,
        default=defaults.max_body_bytes / 2**20,
        help=f"largest request body in MiB; larger get 413 ({defaults.max_body_bytes // 2**20})",
    )
    requests.add_argument(
        "--body-timeout-s",
        metavar="SECONDS",
        type=float,
        default=defaults.body_timeout_s,
        help="time a client has to send its request body; slower ones get 408 "
        f"({defaults.body_timeout_s:g})",
    )
    requests.add_argument(
        "--max-body-readers",
        metavar="N",
        type=integer_at_least(1),
        default=defaults.max_body_readers,
        help="requests sending their bodies at once; beyond it requests get 503 "
        f"({defaults.max_body_readers})",
    )
    requests.add_argument(
        "--max-request-megapixels",
        metavar="MPX",
        type=number_between(0, low_inclusive=False),
        default=defaults.max_request_pixels / 1e6,
        help="pixels of one request's images together, in millions, read from their headers "
        f"before decoding; more get 413 ({defaults.max_request_pixels / 1e6:g})",
    )
    requests.add_argument(
        "--max-decoding-megapixels",
        metavar="MPX",
        type=number_between(0, low_inclusive=False),
        default=defaults.max_decoding_pixels / 1e6,
        help="pixels being decoded or waiting for a decoding thread, all requests together, in "
        "millions; beyond it requests get 503, so that a few small files that decode to huge "
        "images cannot take gigabytes or hold the threads "
        f"({defaults.max_decoding_pixels / 1e6:g})",
    )
    add_decode_threads(requests, defaults.decode_threads)
    add_serve_backend(model)
    add_provider(model)
    add_threads(model)
    add_model_references(command, "models")
    command.set_defaults(run=_run_serve)


def add_serve_backend(model) -> None:
    """``--backend`` and ``--precision``: the runtime the models are served on (issue 35)."""
    model.add_argument(
        "--backend",
        default="onnx",
        help="inference backend: onnx (default), openvino, opencv, a plugin's that runs .onnx "
        "files; on another than onnx, each model's agreement with its export on ONNX Runtime "
        "is measured before it is served",
    )
    add_precision(model)


def _run_serve(args) -> int:
    try:
        import python_multipart  # noqa: F401  (Starlette parses uploads with it)
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise BackendUnavailable(
            f"zoo serve needs the serve extra ({error.name} is missing): pip install 'zoo[serve]'"
        ) from None
    from zoo.serve.server import check_sources, load_models, run_server

    settings = ServeSettings(
        max_batch_size=args.max_batch_size,
        batch_timeout_ms=args.batch_timeout_ms,
        max_queue=args.max_queue,
        queue_timeout_ms=args.queue_timeout_ms,
        max_body_bytes=int(args.max_body_mb * 2**20),
        body_timeout_s=args.body_timeout_s,
        max_body_readers=args.max_body_readers,
        header_timeout_s=args.header_timeout_s,
        max_connections=args.max_connections,
        workers=args.concurrent_batches,
        decode_threads=args.decode_threads,
        max_request_pixels=round(args.max_request_megapixels * 1e6),
        max_decoding_pixels=round(args.max_decoding_megapixels * 1e6),
    )
    check_sources(args.models)
    run_server(
        lambda: load_models(args.models, args.provider, args.threads, args.backend, args.precision),
        settings,
        args.host,
        args.port,
        args.shutdown_timeout,
        args.access_log,
        loading=", ".join(args.models),
    )
    return 0
