"""The HTTP app of ``zoo serve``: the page, health and metrics, and the two front ends on one
``Service`` (``v1``, zoo's own; ``v2``, the Open Inference Protocol), assembled.

Every answer, whatever the route, is counted by status in ``/metrics``; Starlette's own errors
(no such route, wrong method) are JSON like zoo's.
"""

from __future__ import annotations

from importlib import resources

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from zoo.model.spec import MODEL_NAME
from zoo.serve import v1, v2
from zoo.serve.middleware import CountAnswers
from zoo.serve.service import Models, Service, error_response
from zoo.serve.settings import ServeSettings


class ModelNameConvertor(Convertor):
    """``{name:model}`` in a route: a served model's name, so never ``mobilenet:predict``."""

    regex = MODEL_NAME.pattern

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("model", ModelNameConvertor())


def build_app(models: Models, settings: ServeSettings) -> Starlette:
    """The ASGI app serving ``models`` (by the name clients use in URLs), or what a function
    returns, called in a thread once the server has started."""
    service = Service(models, settings)
    page = resources.files("zoo.serve").joinpath("static/index.html").read_text("utf-8")

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    routes = [
        Route("/", index),
        Route("/healthz", service.healthz),
        Route("/metrics", service.metrics_text),
        *v1.routes(service),
        *v2.routes(service),
    ]
    app = Starlette(
        routes=routes,
        lifespan=service.lifespan,
        exception_handlers={HTTPException: _http_error},
        middleware=[Middleware(CountAnswers, service=service)],
    )
    app.state.service = service
    return app


async def _http_error(request: Request, error: HTTPException) -> Response:
    """Starlette's own errors (no such route, wrong method) as JSON too."""
    return error_response(error.status_code, error.detail, error.headers)
