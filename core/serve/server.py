"""Loading the models to serve and running uvicorn until SIGINT or SIGTERM.

The server listens first (it is live at once) and loads the models in the background; it says
so when they are loaded and warmed up (ready), and stops with the reason if one fails to load.
On either signal uvicorn stops accepting connections, lets every request it has accepted get
its answer (the batchers keep running until then), and only then stops the batchers.
"""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager

from zoo.base.errors import ZooError
from zoo.base.hardware import model_device
from zoo.model.spec import check_model_name
from zoo.runtime.api import load
from zoo.runtime.model import Model
from zoo.serve.connections import fit_descriptor_limit, guarded_protocol
from zoo.serve.settings import ServeSettings


def check_sources(sources: Sequence[str]) -> list[tuple[str, str]]:
    """``MODEL``, ``FILE.onnx`` or ``NAME=MODEL_OR_FILE`` items as (the name given or "", what
    to load); a name no URL can carry is refused here, before anything is loaded."""
    parsed = []
    for source in sources:
        name, given, target = source.partition("=")
        if not given:
            name, target = "", source
        else:
            _check_served_name(name)
        parsed.append((name, target))
    return parsed


def load_models(
    sources: Sequence[str],
    provider: str,
    threads: int,
    backend: str = "onnx",
    precision: str | None = None,
) -> dict[str, Model]:
    """The ``sources`` (as ``check_sources`` takes them), loaded on ``backend`` (ONNX Runtime
    unless told) at ``precision``, by the name clients use (the model's own name unless one is
    given), each with its ``verification`` (``zoo.serve.verification``)."""
    from zoo.serve.verification import verification

    models: dict[str, Model] = {}
    for name, target in check_sources(sources):
        model = load(
            target,
            backend=backend,
            provider=provider,
            threads=threads,
            varying_batches=True,
            precision=precision,
        )
        model.verification = verification(model, target, threads)
        name = name or _check_served_name(model.name)
        if name in models:
            raise ZooError(f"two models named {name!r}; name one of them: NAME={target}")
        models[name] = model
    return models


def _check_served_name(name: str) -> str:
    problem = check_model_name(name)
    if problem:
        raise ZooError(f"cannot serve a model named {problem}")
    return name


def run_server(
    load: Callable[[], dict[str, Model]],
    settings: ServeSettings,
    host: str,
    port: int,
    shutdown_timeout: float,
    access_log: bool = False,
    loading: str = "the models",
) -> None:
    """Listen on ``host:port``, then serve what ``load()`` returns (in a thread) once it is
    loaded and warmed up; ``loading`` says what is being loaded."""
    import uvicorn

    from zoo.serve.app import build_app

    listener = _listen(host, port)
    settings = fit_descriptor_limit(settings)
    app = build_app(load, settings)
    server = uvicorn.Server(uvicorn_config(app, settings, shutdown_timeout, access_log))
    url = f"http://{_url_host(host)}:{listener.getsockname()[1]}/"
    service = app.state.service

    def ready(models: dict[str, Model]) -> None:
        print(
            f"zoo: serving {', '.join(models)} at {url} "
            f"on {model_device(next(iter(models.values())))} "
            f"(batches of up to {settings.max_batch_size}, {_batching(settings)}); "
            "Ctrl-C or SIGTERM stops after answering what was accepted",
            file=sys.stderr,
            flush=True,
        )

    def failed(error: Exception) -> None:
        server.should_exit = True

    service.on_ready, service.on_failure = ready, failed
    print(
        f"zoo: loading {loading}; live at {url}, ready once loaded and warmed up",
        file=sys.stderr,
        flush=True,
    )
    with _signals_left_to_uvicorn():
        server.run(sockets=[listener])
    if service.load_error is not None:
        raise service.load_error
    print("zoo: stopped", file=sys.stderr)


def uvicorn_config(app, settings: ServeSettings, shutdown_timeout: float = 30.0, access_log=False):
    """uvicorn's configuration for ``app`` (``build_app``'s): its HTTP protocol with the header
    timeout and the connection bound (``zoo.serve.connections``)."""
    import uvicorn

    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=access_log,
        timeout_graceful_shutdown=shutdown_timeout,
        http=guarded_protocol(settings, app.state.service.metrics),
    )


def _batching(settings: ServeSettings) -> str:
    if settings.batch_timeout_ms:
        return f"each waiting up to {settings.batch_timeout_ms:g} ms for more"
    return "gathered only while the model is busy"


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except (OSError, OverflowError) as error:  # OverflowError: a port above 65535
        raise ZooError(
            f"cannot listen on {host}:{port}: {getattr(error, 'strerror', None) or error}"
        ) from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@contextmanager
def _signals_left_to_uvicorn():
    """uvicorn handles SIGINT and SIGTERM itself (a graceful drain), then raises the signal again
    for the handlers it found; ignoring it there makes a drained shutdown exit 0, not 130."""
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
