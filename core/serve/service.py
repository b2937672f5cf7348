"""What the ``/v1`` and ``/v2`` front ends share: the served models' lifecycle (load, warm up,
stop), admission (body readers, body timeout, queue bound) and one way to answer a failure.

Every error is JSON, ``{"error": "<one line>"}``: 4xx for what a client sent (never a 500 for
bad input), 503 with ``Retry-After`` when a model's queue is full, 500 only for a failure of
the server itself.

A client is given ``--body-timeout-s`` to send its body (else 408, and the connection is
closed), and at most ``--max-body-readers`` requests read bodies at once (beyond, 503 at once):
clients trickling bodies byte by byte hold neither connections nor memory for long. The
images' pixels are budgeted before they are decoded (``decoding``). A client that hangs up is
not worked for: what was left of its request (decoding, waiting for a batch) is dropped, and
it is counted in ``/metrics`` as a disconnect. Requests still unanswered when
``--shutdown-timeout`` ends get a 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from zoo.base.errors import NonFiniteScores, describe_exception
from zoo.model.labels import Prediction
from zoo.runtime.model import Model
from zoo.serve import metrics as prometheus
from zoo.serve.batcher import Batcher
from zoo.serve.decoding import Decoder
from zoo.serve.errors import (
    BodyTimeout,
    ClientDisconnected,
    NotReady,
    Overloaded,
    PayloadTooLarge,
    RequestError,
    UnknownServedModel,
)
from zoo.serve.inputs import EncodedImage
from zoo.serve.settings import ServeSettings

T = TypeVar("T")
Models = Mapping[str, Model] | Callable[[], Mapping[str, Model]]

CLIENT_GONE = "zoo.client_gone"
"""Set in a request's ASGI scope when its client disconnected before it was answered."""


class Service:
    """The models being served, their batchers, the decoding threads and the metrics: what the
    ``/v1`` and ``/v2`` front ends share.

    Given a function that loads the models, the server calls it in the background once it
    listens, and runs each model on a warm-up batch: it is live at once and ready (``ready``)
    only after that. Given models already loaded, it warms them up as it starts."""

    def __init__(self, models: Models, settings: ServeSettings):
        self.settings = settings
        self.metrics = prometheus.ServeMetrics()
        self.batchers: dict[str, Batcher] = {}
        """The ready models' batchers, by name; empty until every model is ready."""
        self.ready = False
        self.decoder = Decoder(settings, self.metrics)
        self.body_readers = asyncio.Semaphore(settings.max_body_readers)
        self._preloaded = not callable(models)
        self._load = (lambda: models) if self._preloaded else models
        self.on_ready: Callable[[dict[str, Model]], None] = lambda models: None
        self.load_error: Exception | None = None
        self.on_failure: Callable[[Exception], None] = lambda error: None
        """Called when loading fails (``load_error``): ``zoo serve`` stops and says why."""

    @asynccontextmanager
    async def lifespan(self, app: Starlette):
        loading = asyncio.create_task(self._load_and_warm_up())
        if self._preloaded:
            await loading
        try:
            yield
        finally:  # uvicorn gets here after the in-flight requests are answered (or cancelled)
            loading.cancel()
            await asyncio.gather(loading, return_exceptions=True)
            for batcher in self.batchers.values():
                await batcher.stop()
            self.decoder.shutdown()

    async def _load_and_warm_up(self) -> None:
        batchers: dict[str, Batcher] = {}
        try:
            models = await asyncio.to_thread(self._load)
            for name, model in models.items():
                batchers[name] = Batcher(name, model, self.settings, self.metrics)
                batchers[name].start()
            await asyncio.gather(*(batcher.warm_up() for batcher in batchers.values()))
        except asyncio.CancelledError:
            await _stop_all(batchers)
            raise
        except Exception as error:
            await _stop_all(batchers)
            self.load_error = error
            self.on_failure(error)
            return
        self.batchers = batchers
        self.ready = True
        self.on_ready(models)

    async def answer(
        self, request: Request, name: str, work: Callable[[Batcher], Awaitable[Response]]
    ) -> Response:
        """``work(batcher)``'s response for an inference request to model ``name``; any
        failure answered as JSON and counted (by kind, and Triton's reason)."""
        started = time.perf_counter()
        model_label = name if name in self.batchers else ""
        failure = None
        try:
            response = await work(self._batcher(name))
        except RequestError as error:
            self.metrics.errors.labels(kind=error.kind, model=model_label).inc()
            failure = "REJECTED" if isinstance(error, Overloaded) else "OTHER"
            response = error_response(error.status, error.message, error.headers)
        except ClientDisconnected:  # nobody to answer; counted as a disconnect, not an error
            request.scope[CLIENT_GONE] = True
            return Response(status_code=400)
        except asyncio.CancelledError:  # by uvicorn, when --shutdown-timeout has passed
            asyncio.current_task().uncancel()  # the cancellation is answered, not passed on
            self.metrics.errors.labels(kind="shutdown", model=model_label).inc()
            failure = "REJECTED"
            response = error_response(
                503,
                "the server is stopping and --shutdown-timeout passed before this request "
                "was answered; retry",
                {"Retry-After": str(self.settings.retry_after_s), "Connection": "close"},
            )
        except NonFiniteScores as error:  # the model's fault, not the client's or zoo's
            self.metrics.errors.labels(kind="non_finite", model=model_label).inc()
            failure = "BACKEND"
            response = error_response(500, str(error))
        except Exception as error:  # not the client's fault: count it and say so
            self.metrics.errors.labels(kind="internal", model=model_label).inc()
            failure = "BACKEND"
            response = error_response(500, f"internal error: {describe_exception(error)}")
        elapsed = time.perf_counter() - started
        self.metrics.latency.labels(model=model_label).observe(elapsed)
        if model_label:
            self.metrics.answered(model_label, elapsed, failure)
        return response

    async def probabilities(
        self, request: Request, batcher: Batcher, images: list[EncodedImage] | np.ndarray
    ) -> np.ndarray:
        """The (N, classes) probabilities of encoded images or (N, height, width, 3) pixels,
        admitted within ``--max-queue``; ``ClientDisconnected`` as soon as the client leaves."""
        if len(images) > self.settings.max_queue:
            raise PayloadTooLarge(
                f"{len(images)} images in one request; at most {self.settings.max_queue} "
                "(--max-queue)"
            )
        return await _while_connected(request, self._probabilities(batcher, images))

    async def _probabilities(
        self, batcher: Batcher, images: list[EncodedImage] | np.ndarray
    ) -> np.ndarray:
        with batcher.admit(len(images)):
            model = batcher.model
            if isinstance(images, np.ndarray):
                pixels = list(images)
            else:
                pixels = await self.decoder.decode(images, model.input)
            return np.stack(await asyncio.gather(*(batcher.probabilities(p) for p in pixels)))

    async def read(self, request: Request, reader: Callable[[Request], Awaitable[T]]) -> T:
        """``reader(request)``, which reads the body, within the body-reader cap and the body
        timeout."""
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
                    return await reader(request)
            except TimeoutError:
                raise BodyTimeout(
                    f"the request body did not arrive within {settings.body_timeout_s:g} s "
                    "(--body-timeout-s)",
                    close,
                ) from None

    def _batcher(self, name: str) -> Batcher:
        if not self.ready:
            raise NotReady(
                "the models are still loading and warming up; retry shortly",
                {"Retry-After": str(self.settings.retry_after_s)},
            )
        if name not in self.batchers:
            raise UnknownServedModel(
                f"unknown model {name!r}; serving: {', '.join(sorted(self.batchers))}"
            )
        return self.batchers[name]

    def served(self, name: str) -> Batcher | Response:
        """Model ``name``'s batcher, or the error response saying why there is none."""
        try:
            return self._batcher(name)
        except RequestError as error:
            return error_response(error.status, error.message, error.headers)

    async def healthz(self, request: Request) -> Response:
        if not self.ready:
            return JSONResponse(
                {"status": "loading", "models": []},
                status_code=503,
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )
        return JSONResponse({"status": "ok", "models": sorted(self.batchers)})

    async def metrics_text(self, request: Request) -> Response:
        body, content_type = self.metrics.render(request.headers.get("accept", ""))
        return Response(body, headers={"Content-Type": content_type})


async def _stop_all(batchers: dict[str, Batcher]) -> None:
    for batcher in batchers.values():
        await batcher.stop()


def served_top(model: Model, probabilities: np.ndarray, k: int) -> list[list[Prediction]]:
    """``model.top``, each class id and label as text UTF-8 can carry. zoo refuses labels that
    are not text where it takes them (``zoo.model.labels.check_labels``); should one reach the
    server still (a card zoo did not write), it is answered escaped (``\\ud800``), never a
    500 on every request."""
    return [
        [replace(p, class_id=_encodable(p.class_id), label=_encodable(p.label)) for p in row]
        for row in model.top(probabilities, k)
    ]


def _encodable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


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
