"""ASGI middleware of ``zoo serve``."""

from __future__ import annotations

from zoo.serve.service import CLIENT_GONE, Service


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
