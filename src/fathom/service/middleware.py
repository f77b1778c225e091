"""Request context: a request id on every response and log line, access logs, latency metrics,
and the body size limit of each route, enforced while the body streams in (before it is all
read): a declared ``Content-Length`` over the limit is refused before any of the body is read,
and a body without one is cut off as soon as it passes the limit.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fathom.service.errors import CodedHTTPException, error_body_for
from fathom.service.metrics import Metrics

__all__ = ["BodyLimits", "RequestContextMiddleware"]

log = structlog.get_logger("fathom.service.access")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The largest request body of each kind of route, in bytes.

    Attributes:
        upload: ``POST /v1/documents`` (a whole document).
        mcp: ``/mcp`` (a tool call, which may carry a document for ingest_text).
        other: every other route (search, ask, feedback ...: a small JSON object, or no body).
    """

    upload: int
    mcp: int
    other: int

    def of(self, method: str, path: str) -> tuple[int, str]:
        """The limit of a request and the error code of a body over it."""
        path = path.rstrip("/")
        if method == "POST" and path == "/v1/documents":
            return self.upload, "upload.too_large"
        if path == "/mcp":
            return self.mcp, "request.too_large"
        return self.other, "request.too_large"


def _too_large(limit: int, code: str) -> CodedHTTPException:
    return CodedHTTPException(413, code, f"the request body is larger than the {limit} byte limit")


class RequestContextMiddleware:
    """Pure ASGI middleware, so streamed responses (SSE) pass through untouched."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, body_limits: BodyLimits) -> None:
        self.app = app
        self.metrics = metrics
        self.body_limits = body_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        limit, code = self.body_limits.of(scope.get("method", ""), scope.get("path", ""))

        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            status = 413
            await self._send_error(send, scope["path"], 413, code, _too_large(limit, code).detail, request_id)
            self._record(scope, status, started)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit, code)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                raw: list[Any] = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in raw):
                    raw.append((b"x-request-id", request_id.encode()))
                message["headers"] = raw
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        finally:
            self._record(scope, status, started)
            structlog.contextvars.unbind_contextvars("request_id")

    def _record(self, scope: Scope, status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        self.metrics.requests.labels(route=template, method=method, status=str(status)).observe(seconds)
        log.info(
            "http.request",
            method=method,
            route=template,
            status=status,
            duration_ms=round(seconds * 1000, 2),
            key_id=scope.get("state", {}).get("key_id"),
        )

    @staticmethod
    async def _send_error(
        send: Send, path: str, status: int, code: str, message: str, request_id: str
    ) -> None:
        body = json.dumps(error_body_for(path, status, code, message, request_id)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
