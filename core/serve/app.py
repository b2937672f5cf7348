"""The HTTP API: a Starlette app over loaded models, one ``Batcher`` each.

Every error is JSON, ``{"error": "<one line>"}``: 4xx for what a client sent (never a 500 for
bad input), 503 with ``Retry-After`` when a model's queue is full, 500 only for a failure of
the server itself.

A client is given ``--body-timeout-s`` to send its body (else 408, and the connection is
closed), and at most ``--max-body-readers`` requests read bodies at once (beyond, 503 at once):
clients trickling bodies byte by byte hold neither connections nor memory for long. The
images' pixels are budgeted before they are decoded (``decoding``). A client that hangs up is
not worked for: what was left of its request (decoding, waiting for a batch) is dropped, and
it is counted in ``/metrics`` as a disconnect; every other answer is counted by status,
whatever the route. Requests still unanswered when ``--shutdown-timeout`` ends get a 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, TypeVar

import numpy as np
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from zoo.errors import NonFiniteScores, describe_exception
from zoo.model import Model
from zoo.printing import record
from zoo.specs import MODEL_NAME

from . import metrics as prometheus
from .batcher import Batcher
from .decoding import Decoder
from .errors import (
    BodyTimeout,
    ClientDisconnected,
    Overloaded,
    PayloadTooLarge,
    RequestError,
    UnknownServedModel,
)
from .inputs import EncodedImage, query_integer, read_images
from .settings import ServeSettings

T = TypeVar("T")

DEFAULT_TOP = 5
CLIENT_GONE = "zoo.client_gone"
"""Set in a request's ASGI scope when its client disconnected before it was answered."""


class ModelNameConvertor(Convertor):
    """``{name:model}`` in a route: a served model's name, so never ``mobilenet:predict``."""

    regex = MODEL_NAME.pattern

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("model", ModelNameConvertor())


class Service:
    """The models being served, their batchers, the decoding threads and the metrics."""

    def __init__(self, models: dict[str, Model], settings: ServeSettings):
        self.settings = settings
        self.metrics = prometheus.ServeMetrics()
        self.batchers = {
            name: Batcher(model, settings, self.metrics) for name, model in models.items()
        }
        self.decoder = Decoder(settings, self.metrics)
        self.body_readers = asyncio.Semaphore(settings.max_body_readers)

    @asynccontextmanager
    async def lifespan(self, app: Starlette):
        for batcher in self.batchers.values():
            batcher.start()
        try:
            yield
        finally:  # uvicorn gets here after the in-flight requests are answered (or cancelled)
            for batcher in self.batchers.values():
                await batcher.stop()
            self.decoder.shutdown()

    async def predict(self, request: Request) -> Response:
        started = time.perf_counter()
        name = request.path_params["name"]
        model_label = name if name in self.batchers else ""
        try:
            response = JSONResponse(await self._predict(request, name))
        except RequestError as error:
            self.metrics.errors.labels(kind=error.kind, model=model_label).inc()
            response = error_response(error.status, error.message, error.headers)
        except ClientDisconnected:  # nobody to answer; counted as a disconnect, not an error
            request.scope[CLIENT_GONE] = True
            return Response(status_code=400)
        except asyncio.CancelledError:  # by uvicorn, when --shutdown-timeout has passed
            asyncio.current_task().uncancel()  # the cancellation is answered, not passed on
            self.metrics.errors.labels(kind="shutdown", model=model_label).inc()
            response = error_response(
                503,
                "the server is stopping and --shutdown-timeout passed before this request "
                "was answered; retry",
                {"Retry-After": str(self.settings.retry_after_s), "Connection": "close"},
            )
        except NonFiniteScores as error:  # the model's fault, not the client's or zoo's
            self.metrics.errors.labels(kind="non_finite", model=model_label).inc()
            response = error_response(500, str(error))
        except Exception as error:  # not the client's fault: count it and say so
            self.metrics.errors.labels(kind="internal", model=model_label).inc()
            response = error_response(500, f"internal error: {describe_exception(error)}")
        self.metrics.latency.labels(model=model_label).observe(time.perf_counter() - started)
        return response

    async def _predict(self, request: Request, name: str) -> list[dict]:
        batcher = self._batcher(name)
        top = query_integer(request, "top", DEFAULT_TOP)
        images = await self._read_images(request)
        if len(images) > self.settings.max_queue:
            raise PayloadTooLarge(
                f"{len(images)} images in one request; at most {self.settings.max_queue} "
                "(--max-queue)"
            )
        rows = await _while_connected(request, self._probabilities(batcher, images))
        model = batcher.model
        tops = model.top(np.stack(rows), top)
        return [
            record(image.name, model.name, model.backend, best)
            for image, best in zip(images, tops, strict=True)
        ]

    async def _probabilities(self, batcher: Batcher, images: list[EncodedImage]) -> list:
        with batcher.admit(len(images)):
            model = batcher.model
            pixels = await self.decoder.decode(images, model.input_size, model.interpolation)
            return await asyncio.gather(*(batcher.probabilities(p) for p in pixels))

    async def _read_images(self, request: Request) -> list[EncodedImage]:
        """The request's images, read within the body-reader cap and the body timeout."""
        settings = self.settings
        close = {"Connection": "close"}  # what is left of the body is not worth reading
        if self.body_readers.locked():
            raise Overloaded(
                f"{settings.max_body_readers} requests are already sending their bodies "
                "(--max-body-readers); retry shortly",
                {"Retry-After": str(settings.retry_after_s), **close},
            )
        async with self.body_readers:
            try:
                async with asyncio.timeout(settings.body_timeout_s):
                    return await read_images(request, settings.max_body_bytes)
            except TimeoutError:
                raise BodyTimeout(
                    f"the request body did not arrive within {settings.body_timeout_s:g} s "
                    "(--body-timeout-s)",
                    close,
                ) from None

    def _batcher(self, name: str) -> Batcher:
        if name not in self.batchers:
            raise UnknownServedModel(
                f"unknown model {name!r}; serving: {', '.join(sorted(self.batchers))}"
            )
        return self.batchers[name]

    async def list_models(self, request: Request) -> Response:
        return JSONResponse(
            {"models": [describe(name, b.model) for name, b in self.batchers.items()]}
        )

    async def show_model(self, request: Request) -> Response:
        name = request.path_params["name"]
        try:
            batcher = self._batcher(name)
        except RequestError as error:
            return error_response(error.status, error.message)
        return JSONResponse(describe(name, batcher.model))

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "models": sorted(self.batchers)})

    async def metrics_text(self, request: Request) -> Response:
        body, content_type = self.metrics.render(request.headers.get("accept", ""))
        return Response(body, headers={"Content-Type": content_type})


def build_app(models: dict[str, Model], settings: ServeSettings) -> Starlette:
    """The ASGI app serving ``models`` (by the name clients use in URLs)."""
    service = Service(models, settings)
    page = resources.files("zoo.serve").joinpath("static/index.html").read_text("utf-8")

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    routes = [
        Route("/", index),
        Route("/healthz", service.healthz),
        Route("/metrics", service.metrics_text),
        Route("/v1/models", service.list_models),
        Route("/v1/models/{name:model}:predict", service.predict, methods=["POST"]),
        Route("/v1/models/{name:model}", service.show_model),
    ]
    app = Starlette(
        routes=routes,
        lifespan=service.lifespan,
        exception_handlers={HTTPException: _http_error},
        middleware=[Middleware(CountAnswers, service=service)],
    )
    app.state.service = service
    return app


def describe(name: str, model: Model) -> dict:
    """A served model's metadata, from its ONNX file's model card and session."""
    card, session = model.runner.card, model.runner.session
    return {
        "name": name,
        "model": card.model,
        "backend": model.backend,
        "input": {
            "name": card.input_name,
            "layout": card.input_layout,
            "dtype": card.input_dtype,
            "size": list(card.input.size),
        },
        "preprocessing": card.input.preprocess.to_dict(),
        "labels": len(model.labels),
        "weights": card.weights,
        "opset": card.opset,
        "precision": card.precision,
        "providers": session.get_providers(),
    }


class CountAnswers:
    """ASGI middleware: every request answered, counted by status (and served model, for a
    model's routes); one whose client left before the answer, counted as a disconnect."""

    def __init__(self, app, service: Service):
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = None

        async def send_noting_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            status = status or 500  # Starlette's last-resort handler answers it
            raise
        finally:
            name = scope.get("path_params", {}).get("name")
            model = name if name in self.service.batchers else ""
            metrics = self.service.metrics
            if scope.get(CLIENT_GONE):
                metrics.disconnects.labels(model=model).inc()
            elif status is not None:
                metrics.requests.labels(model=model, status=str(status)).inc()


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _http_error(request: Request, error: HTTPException) -> Response:
    """Starlette's own errors (no such route, wrong method) as JSON too."""
    return error_response(error.status_code, error.detail, error.headers)


async def _while_connected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """``work``'s result, or ``ClientDisconnected`` as soon as the client hangs up.

    Then ``work`` is cancelled wherever it is: its images waiting for a decoding thread are
    dropped, and so are those waiting for a batch; a client already gone starts nothing."""
    if await request.is_disconnected():
        work.close()
        raise ClientDisconnected
    task = asyncio.ensure_future(work)
    hung_up = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait((task, hung_up), return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            raise ClientDisconnected
        return task.result()
    finally:
        task.cancel()
        hung_up.cancel()
        await asyncio.gather(task, hung_up, return_exceptions=True)  # let them clean up


async def _disconnect(request: Request) -> None:
    """Returns when the client has hung up; the body must have been read already."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
