"""What a connection may cost before it has sent a request: ``zoo serve``'s header timeout and
its bound on open connections, in uvicorn's own HTTP protocol.

uvicorn times out neither a client that trickles its request headers (a byte every few
seconds) nor one that connects and sends nothing: with httptools, its only timer is the
keep-alive one, armed after an answer and stopped by any byte received. Such clients hold
their connections for good; at the process's file-descriptor limit every other client gets an
empty reply. So each connection here must have sent a whole request line and headers within
``--header-timeout-s`` of being opened (or of its previous answer, on a kept-alive
connection), else it is closed; and past ``--max-connections`` open connections, a new one is
answered 503 at once, before anything is read from it. Both are counted in ``/metrics``
(``zoo_connections_shed_total``) and said on stderr, at most once every ``NOTICE_EVERY_S``
per reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field, replace

from zoo.base import jsonio
from zoo.serve.metrics import ServeMetrics
from zoo.serve.settings import ServeSettings

NOTICE_EVERY_S = 10.0
"""How often, at most, stderr hears of connections shed for one reason."""
_LINGER_S = 1.0
"""How long a connection refused past the bound stays open after its 503, its client's
request read and dropped (closed at once, a request already received would reset it, and the
client might never read the 503)."""


@dataclass
class Shedding:
    """The connections shed, counted and said (rate-limited) on stderr."""

    metrics: ServeMetrics
    settings: ServeSettings
    _said: dict[str, tuple[float, int]] = field(default_factory=dict)
    """reason -> (when stderr last heard of it, how many were shed since)."""

    def shed(self, reason: str) -> None:
        self.metrics.shed_connections.labels(reason=reason).inc()
        last, unsaid = self._said.get(reason, (-NOTICE_EVERY_S, 0))
        now = time.monotonic()
        if now - last < NOTICE_EVERY_S:
            self._said[reason] = (last, unsaid + 1)
            return
        self._said[reason] = (now, 0)
        print(f"zoo: {self._sentence(reason, unsaid + 1)}", file=sys.stderr, flush=True)

    def _sentence(self, reason: str, count: int) -> str:
        connections = "a connection" if count == 1 else f"{count} connections"
        if reason == "header_timeout":
            return (
                f"closed {connections} whose request headers did not arrive within "
                f"{self.settings.header_timeout_s:g} s (--header-timeout-s)"
            )
        return (
            f"refused {connections} with 503: {self.settings.max_connections} were open "
            "(--max-connections)"
        )


def guarded_protocol(settings: ServeSettings, metrics: ServeMetrics) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (httptools', else h11's) with the header timeout and the
    connection bound of ``settings``; for ``uvicorn.Config(http=...)``."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    shedding = Shedding(metrics, settings)
    body = jsonio.dumps(
        {"error": f"too many open connections (--max-connections {settings.max_connections})"}
    ).encode()
    refusal = (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        + f"retry-after: {settings.retry_after_s}\r\ncontent-length: {len(body)}\r\n".encode()
        + b"connection: close\r\n\r\n"
        + body
    )

    class Guarded(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        refused = False

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > settings.max_connections:
                self.refused = True
                shedding.shed("connection_limit")
                transport.write(refusal)
                if transport.can_write_eof():
                    transport.write_eof()
                self.loop.call_later(_LINGER_S, transport.close)
                return
            self._await_headers()

        def data_received(self, data: bytes) -> None:
            if not self.refused:  # a refused connection's request is read and dropped
                super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_headers()

        def _await_headers(self) -> None:
            """The next request's headers must arrive within the header timeout: a cycle
            (uvicorn's request) other than the current one must have begun by then."""
            waiting_since = self.cycle
            self.loop.call_later(settings.header_timeout_s, self._check_headers, waiting_since)

        def _check_headers(self, waiting_since) -> None:
            if self.cycle is waiting_since and not self.transport.is_closing():
                shedding.shed("header_timeout")
                self.transport.close()

    return Guarded


DESCRIPTORS_SPARE = 256
"""File descriptors kept for what is not a client's connection: the listener, the model files,
ONNX Runtime's and the threads' own."""


def fit_descriptor_limit(settings: ServeSettings) -> ServeSettings:
    """``settings``, with the process's file-descriptor limit raised (up to its hard limit) to
    hold ``max_connections`` and ``DESCRIPTORS_SPARE``; where the hard limit is lower, the bound
    lowered to fit it, with a warning."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = settings.max_connections + DESCRIPTORS_SPARE
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return settings
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    if soft >= needed:
        return settings
    fits = max(1, soft - DESCRIPTORS_SPARE)
    print(
        f"zoo: warning: --max-connections {settings.max_connections} does not fit the "
        f"file-descriptor limit ({soft}; ulimit -n); serving at most {fits} connections",
        file=sys.stderr,
    )
    return replace(settings, max_connections=fits)
