"""The HTTP API: a Starlette app over loaded models, one ``Batcher`` each.

Every error is JSON, ``{"error": "<one line>"}``: 4xx for what a client sent (never a 500 for
bad input), 503 with ``Retry-After`` when a model's queue is full, 500 only for a failure of
the server itself.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources

import numpy as np
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from zoo.errors import ImageError, describe_exception
from zoo.images import KERAS_INTERPOLATION, decode_image, resize
from zoo.model import Model
from zoo.output import record
from zoo.pipeline import default_workers

from . import metrics as prometheus
from .batcher import Batcher
from .errors import InvalidImage, PayloadTooLarge, RequestError, UnknownServedModel
from .inputs import EncodedImage, read_images
from .settings import MODEL_NAME, ServeSettings

DEFAULT_TOP = 5


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
        self.decoder = ThreadPoolExecutor(
            settings.decode_threads or default_workers(), thread_name_prefix="zoo-decode"
        )

    @asynccontextmanager
    async def lifespan(self, app: Starlette):
        for batcher in self.batchers.values():
            batcher.start()
        try:
            yield
        finally:  # uvicorn gets here after the in-flight requests are answered
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
        except Exception as error:  # not the client's fault: count it and say so
            self.metrics.errors.labels(kind="internal", model=model_label).inc()
            response = error_response(500, f"internal error: {describe_exception(error)}")
        self.metrics.requests.labels(model=model_label, status=str(response.status_code)).inc()
        self.metrics.latency.labels(model=model_label).observe(time.perf_counter() - started)
        return response

    async def _predict(self, request: Request, name: str) -> list[dict]:
        batcher = self._batcher(name)
        top = _top(request.query_params.get("top", str(DEFAULT_TOP)))
        images = await read_images(request, self.settings.max_body_bytes)
        if len(images) > self.settings.max_queue:
            raise PayloadTooLarge(
                f"{len(images)} images in one request; at most {self.settings.max_queue} "
                "(--max-queue)"
            )
        with batcher.admit(len(images)):
            loop = asyncio.get_running_loop()
            size = batcher.model.input_size
            pixels = await asyncio.gather(
                *(loop.run_in_executor(self.decoder, _decode, image, size) for image in images)
            )
            rows = await asyncio.gather(*(batcher.probabilities(p) for p in pixels))
        model = batcher.model
        tops = model.top(np.stack(rows), top)
        return [
            record(image.name, model.name, model.backend, best)
            for image, best in zip(images, tops, strict=True)
        ]

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
            "size": list(card.input_size),
        },
        "preprocessing": card.preprocess.to_dict(),
        "labels": len(model.labels),
        "weights": card.weights,
        "opset": card.opset,
        "precision": card.precision,
        "providers": session.get_providers(),
    }


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _http_error(request: Request, error: HTTPException) -> Response:
    """Starlette's own errors (no such route, wrong method) as JSON too."""
    return error_response(error.status_code, error.detail, error.headers)


def _top(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise RequestError(f"top must be a positive integer, not {text!r}")
    return int(text)


def _decode(image: EncodedImage, size: tuple[int, int]) -> np.ndarray:
    """One encoded image as model-sized uint8 RGB, resized as Keras's ``load_img`` does."""
    try:
        return resize(decode_image(image.data, image.name), size, KERAS_INTERPOLATION)
    except ImageError as error:
        raise InvalidImage(str(error)) from None
