"""The one JSON error shape of the HTTP API, and the handlers that produce it.

Every error response is ``{"error": {"code", "message", "request_id"}}`` with a stable code,
a message safe to show, and the id that the logs carry for the request.
"""

from __future__ import annotations

import math
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from fathom.errors import (
    BackendUnavailable,
    Conflict,
    FathomError,
    IngestError,
    InvalidQuery,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ProviderError,
    StorageFull,
    Unauthorized,
)
from fathom.service.oidc import public_base_url
from fathom.store.outage import RETRY_AFTER_SECONDS, database_unavailable, is_unavailable

__all__ = [
    "OPENAI_PATHS",
    "CodedHTTPException",
    "error_body",
    "error_body_for",
    "error_response",
    "install_error_handlers",
    "openai_error_body",
    "request_id_of",
    "status_for",
]

log = structlog.get_logger(__name__)


class CodedHTTPException(StarletteHTTPException):
    """An HTTP error raised below the routes (e.g. by middleware) that carries its own code."""

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(status_code, detail)
        self.code = code


_STATUS_BY_TYPE: tuple[tuple[type[FathomError], int], ...] = (
    (Unauthorized, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidQuery, 422),
    (IngestError, 422),
    (ProviderError, 502),
    (BackendUnavailable, 503),
    (StorageFull, 507),
)

_CODE_BY_STATUS = {
    400: "request.invalid",
    401: "auth.invalid_key",
    404: "route.not_found",
    405: "method.not_allowed",
    406: "request.not_acceptable",
    413: "upload.too_large",
    415: "request.unsupported_media_type",
    422: "request.invalid",
    429: "rate_limit.exceeded",
}


def status_for(exc: FathomError) -> int:
    """The HTTP status of a fathom error."""
    if isinstance(exc, LimitExceeded):
        # A full per-tenant queue drains by itself: 429 with Retry-After, not 413.
        too_large = exc.code.startswith("upload.") and exc.code != "upload.queue_full"
        return 413 if too_large else 429
    for error_type, status in _STATUS_BY_TYPE:
        if isinstance(exc, error_type):
            return status
    return 500


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def error_body(code: str, message: str, request_id: str) -> dict[str, Any]:
    """The JSON body of every error response."""
    return {"error": {"code": code, "message": message, "request_id": request_id}}


# The OpenAI-compatible routes answer errors in OpenAI's envelope, so OpenAI clients (the SDK's
# APIError, LangChain's ChatOpenAI ...) read them; fathom's stable code is its `code`.
OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")

_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def openai_error_body(status: int, code: str, message: str, request_id: str) -> dict[str, Any]:
    """OpenAI's error body (``message``, ``type``, ``param``, ``code``), plus the request id."""
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {
        "error": {"message": message, "type": kind, "param": None, "code": code, "request_id": request_id}
    }


def error_body_for(path: str, status: int, code: str, message: str, request_id: str) -> dict[str, Any]:
    """The error body for a request path: OpenAI's envelope on the OpenAI-compatible routes,
    else :func:`error_body`."""
    if any(path == prefix or path.startswith(prefix + "/") for prefix in OPENAI_PATHS):
        return openai_error_body(status, code, message, request_id)
    return error_body(code, message, request_id)


def error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    request_id = request_id_of(request)
    metrics = getattr(request.app.state, "service", None)
    if metrics is not None:
        metrics.metrics.errors.labels(code=code).inc()
    all_headers = {"X-Request-ID": request_id, **(headers or {})}
    body = error_body_for(request.url.path, status, code, message, request_id)
    return JSONResponse(body, status_code=status, headers=all_headers)


async def _fathom_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FathomError)
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, LimitExceeded) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, BackendUnavailable):
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = _bearer_challenge(request, exc.code)
    if status >= 500:
        log.error("http.error", code=exc.code, status=status)
    return error_response(request, status, exc.code, exc.message, headers)


def _bearer_challenge(request: Request, code: str) -> str:
    """``Bearer``; with single sign-on, also where MCP clients find the issuer (RFC 9728)."""
    service = getattr(request.app.state, "service", None)
    oidc = getattr(service, "oidc", None)
    if service is None or oidc is None:
        return "Bearer"
    return str(oidc.challenge(public_base_url(request, service.settings), request.url.path, code))


def _clip(part: str, limit: int = 64) -> str:
    return part if len(part) <= limit else part[: limit - 1] + "…"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only where and what, never the input: it may hold document text. A location may name a
    # key the client sent (a filter's, say), so each part is clipped.
    problems = [
        f"{'.'.join(_clip(str(part)) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        for error in exc.errors()[:5]
    ]
    return error_response(request, 422, "request.invalid", "; ".join(problems) or "invalid request")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_BY_STATUS.get(
        exc.status_code, "request.failed" if exc.status_code < 500 else "internal.error"
    )
    if isinstance(exc, CodedHTTPException):
        code = exc.code
    message = exc.detail if isinstance(exc.detail, str) else "the request failed"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(request, exc.status_code, code, message, headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
            methods |= route.methods
    return sorted(methods)


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    """A database outage is a 503 the client may retry; any other store error is a bug (500)."""
    if is_unavailable(exc):
        log.warning("store.unavailable", error_type=type(exc).__name__)
        return await _fathom_error(request, database_unavailable())
    return await _unexpected_error(request, exc)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("http.unhandled", error_type=type(exc).__name__)
    return error_response(request, 500, "internal.error", "the server failed to handle the request")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error to the one shape."""
    app.add_exception_handler(FathomError, _fathom_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa_exc.DBAPIError, _store_error)
    app.add_exception_handler(sa_exc.TimeoutError, _store_error)
    app.add_exception_handler(Exception, _unexpected_error)
