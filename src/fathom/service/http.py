"""Connection limits of ``fathom serve``: the options it gives uvicorn, and a header deadline.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``), caps the size of a request
head (``h11_max_incomplete_event_size``) and answers 503 once a process holds too many
connections (``limit_concurrency``). It does not limit how long a client may take to send a
request's headers: a client that opens a connection and sends nothing, or a header line now and
then (slowloris), keeps it open for as long as it likes, and enough of them fill the connection
cap. :class:`GuardedH11Protocol` (and :class:`GuardedHttpToolsProtocol` when httptools is
installed) closes a connection whose request headers are not complete ``http_header_timeout``
seconds after it opened, or after the first byte of the next request on a kept-alive
connection. The deadline does not move while bytes trickle in.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

from fathom.config import Settings, load_settings

__all__ = ["GuardedH11Protocol", "server_options"]

log = structlog.get_logger(__name__)


@functools.cache
def _header_timeout() -> float:
    # uvicorn builds protocols itself (in each worker process): read the settings there once,
    # from the same environment `fathom serve` set up for the app.
    return load_settings().http_header_timeout


class _HeaderDeadline(asyncio.Protocol):
    """Mixed in before a uvicorn HTTP protocol: close connections whose headers are overdue."""

    _header_timer: asyncio.TimerHandle | None = None
    _guarded_transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._guarded_transport = transport
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _waiting_for_headers(self) -> bool:
        # uvicorn creates a request's cycle once its headers are complete; until then, and after
        # a response on a kept-alive connection, the connection waits for the next request head.
        cycle: Any = getattr(self, "cycle", None)
        return cycle is None or bool(cycle.response_complete)

    def _watch_headers(self) -> None:
        transport = self._guarded_transport
        if transport is None or transport.is_closing() or not self._waiting_for_headers():
            self._cancel_header_timer()
        elif self._header_timer is None:
            loop = asyncio.get_running_loop()
            self._header_timer = loop.call_later(_header_timeout(), self._headers_overdue)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_overdue(self) -> None:
        self._header_timer = None
        transport = self._guarded_transport
        if transport is not None and not transport.is_closing() and self._waiting_for_headers():
            log.info("http.header_timeout", seconds=_header_timeout())
            transport.close()


class GuardedH11Protocol(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with the header deadline."""


_PROTOCOL = f"{__name__}:GuardedH11Protocol"

try:  # uvicorn prefers httptools when it is installed (`uvicorn[standard]`); so do we
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - depends on the installed extras
    pass
else:  # pragma: no cover

    class GuardedHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol with the header deadline."""

    __all__ += ["GuardedHttpToolsProtocol"]
    _PROTOCOL = f"{__name__}:GuardedHttpToolsProtocol"


def server_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options of ``fathom serve`` that bound connections (see docs/service.md)."""
    return {
        # A string, not the class: uvicorn hands its config to worker processes.
        "http": _PROTOCOL,
        "timeout_keep_alive": settings.http_keep_alive_timeout,
        "limit_concurrency": settings.http_max_connections,
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
    }
