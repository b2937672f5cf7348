"""The Open Inference Protocol ("v2", as Triton, KServe and MLServer speak it) over HTTP: a thin
front end on the same models, batchers and decoding threads as ``/v1``.

Health, server and model metadata, model readiness and inference, with the ``/versions/{v}/``
forms of the model routes (every model has the one version ``1``). The extensions supported:
binary tensor data and classification (``tensors`` has the bodies). A health or readiness
question answered "no" is a 400, as the protocol says; an inference request before the models
are ready gets a 503 with ``Retry-After``.
"""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zoo.base.version import __version__
from zoo.serve import tensors
from zoo.serve.batcher import Batcher
from zoo.serve.errors import UnknownServedModel
from zoo.serve.inputs import read_body
from zoo.serve.metrics import MODEL_VERSION
from zoo.serve.service import Service, served_top
from zoo.serve.verification import as_parameters

EXTENSIONS = ["binary_tensor_data", "classification"]
PLATFORM = "onnxruntime_onnx"


def routes(service: Service) -> list[Route]:
    front = OpenInference(service)
    model_routes = []
    for prefix in ("/v2/models/{name:model}", "/v2/models/{name:model}/versions/{version}"):
        model_routes += [
            Route(prefix, front.model_metadata),
            Route(f"{prefix}/ready", front.model_ready),
            Route(f"{prefix}/infer", front.infer, methods=["POST"]),
        ]
    return [
        Route("/v2", front.server_metadata),
        Route("/v2/health/live", front.live),
        Route("/v2/health/ready", front.server_ready),
        *model_routes,
    ]


class OpenInference:
    def __init__(self, service: Service):
        self.service = service

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def server_ready(self, request: Request) -> Response:
        ready = self.service.ready
        return JSONResponse({"ready": ready}, status_code=200 if ready else 400)

    async def server_metadata(self, request: Request) -> Response:
        return JSONResponse({"name": "zoo", "version": __version__, "extensions": EXTENSIONS})

    async def model_metadata(self, request: Request) -> Response:
        batcher = self._served(request)
        if isinstance(batcher, Response):
            return batcher
        model = batcher.model
        height, width = model.input_size
        return JSONResponse(
            {
                "name": request.path_params["name"],
                "versions": [MODEL_VERSION],
                "platform": PLATFORM,
                "inputs": [
                    {"name": tensors.BYTES_INPUT, "datatype": "BYTES", "shape": [-1]},
                    {
                        "name": tensors.PIXELS_INPUT,
                        "datatype": "UINT8",
                        "shape": [-1, height, width, _channels(model)],
                    },
                ],
                "outputs": [
                    {
                        "name": tensors.OUTPUT,
                        "datatype": "FP32",
                        "shape": [-1, len(model.labels)],
                    }
                ],
                "parameters": as_parameters(model.verification or {}),
            }
        )

    async def model_ready(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not self.service.ready:
            return JSONResponse({"name": name, "ready": False}, status_code=400)
        batcher = self._served(request)
        if isinstance(batcher, Response):
            return batcher
        return JSONResponse({"name": name, "ready": True})

    async def infer(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def work(batcher: Batcher) -> Response:
            _check_version(request)
            service = self.service
            body = await service.read(
                request, lambda r: read_body(r, service.settings.max_body_bytes)
            )
            model = batcher.model
            parsed = tensors.parse_request(
                body,
                request.headers.get(tensors.HEADER_LENGTH),
                model.input_size,
                service.settings.max_queue,
                _channels(model),
            )
            probabilities = await service.probabilities(request, batcher, parsed.images)
            content, headers = tensors.response(
                name, MODEL_VERSION, parsed, probabilities, partial(served_top, model)
            )
            return Response(content, headers=headers)

        return await self.service.answer(request, name, work)

    def _served(self, request: Request) -> Batcher | Response:
        try:
            _check_version(request)
        except UnknownServedModel as error:
            return JSONResponse({"error": error.message}, status_code=error.status)
        return self.service.served(request.path_params["name"])


def _check_version(request: Request) -> None:
    version = request.path_params.get("version")
    if version is not None and version != MODEL_VERSION:
        raise UnknownServedModel(
            f"model {request.path_params['name']!r} has no version {version[:20]!r}; "
            f"its one version is {MODEL_VERSION}"
        )


def _channels(model) -> int:
    """What the model's pixels have: 1 for a grayscale model, else 3 (its ``InputConfig``'s,
    which its card gave it; a model served from memory has no card)."""
    return model.input.preprocess.channels
