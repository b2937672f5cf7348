"""The errors a request can cause, each answered with its status and ``{"error": message}``."""

from __future__ import annotations


class RequestError(Exception):
    """A request the server refuses. ``kind`` is the short name counted in ``/metrics``."""

    status = 400
    kind = "bad_request"

    def __init__(self, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BodyTimeout(RequestError):
    """The body did not arrive in time (a slow or stalled client); the connection is closed."""

    status = 408
    kind = "body_timeout"


class UnknownServedModel(RequestError):
    status = 404
    kind = "unknown_model"


class PayloadTooLarge(RequestError):
    status = 413
    kind = "payload_too_large"


class UnsupportedMediaType(RequestError):
    status = 415
    kind = "unsupported_media_type"


class InvalidImage(RequestError):
    status = 422
    kind = "invalid_image"


class Overloaded(RequestError):
    status = 503
    kind = "overloaded"


class QueueTimeout(Overloaded):
    kind = "queue_timeout"


class NotReady(RequestError):
    """The models are still loading or warming up."""

    status = 503
    kind = "not_ready"


class ClientDisconnected(Exception):
    """The client went away before its request was read: there is no one to answer."""
