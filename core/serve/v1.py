"""zoo's own HTTP API, ``/v1``: encoded images in (one body, or a multipart form), top-K
records out, as ``zoo predict --json`` prints them; and each served model's metadata.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zoo.base.printing import record
from zoo.runtime.model import Model
from zoo.serve.batcher import Batcher
from zoo.serve.inputs import query_integer, read_images
from zoo.serve.service import Service, served_top

DEFAULT_TOP = 5


def routes(service: Service) -> list[Route]:
    front = Predictions(service)
    return [
        Route("/v1/models", front.list_models),
        Route("/v1/models/{name:model}:predict", front.predict, methods=["POST"]),
        Route("/v1/models/{name:model}", front.show_model),
    ]


class Predictions:
    def __init__(self, service: Service):
        self.service = service

    async def predict(self, request: Request) -> Response:
        return await self.service.answer(
            request, request.path_params["name"], self._predict(request)
        )

    def _predict(self, request: Request) -> Callable[[Batcher], Awaitable[Response]]:
        async def work(batcher: Batcher) -> Response:
            top = query_integer(request, "top", DEFAULT_TOP)
            max_body = self.service.settings.max_body_bytes
            images = await self.service.read(request, lambda r: read_images(r, max_body))
            probabilities = await self.service.probabilities(request, batcher, images)
            model = batcher.model
            return JSONResponse(
                [
                    record(image.name, model.name, model.backend, best)
                    for image, best in zip(
                        images, served_top(model, probabilities, top), strict=True
                    )
                ]
            )

        return work

    async def list_models(self, request: Request) -> Response:
        return JSONResponse(
            {"models": [describe(name, b.model) for name, b in self.service.batchers.items()]}
        )

    async def show_model(self, request: Request) -> Response:
        name = request.path_params["name"]
        batcher = self.service.served(name)
        if isinstance(batcher, Response):
            return batcher
        return JSONResponse(describe(name, batcher.model))


def describe(name: str, model: Model) -> dict:
    """A served model's metadata, from its ONNX file's model card and session."""
    card, session = model.runner.card, getattr(model.runner, "session", None)
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
        "precision": model.precision,
        "providers": session.get_providers() if session is not None else [],
        "verification": model.verification,
    }
