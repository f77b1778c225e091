"""The server span of each HTTP request, when tracing is on.

Pure ASGI middleware, outermost, so the span covers the whole request (a streamed answer
included). A W3C ``traceparent`` header makes the request a child of the caller's span; the
span is named by the route template (``POST /v1/ask``) once routing has chosen it. Every stage
the request runs (auth, search, ask ...) is a child span through :mod:`fathom.telemetry`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fathom.telemetry import Telemetry

__all__ = ["TracingMiddleware"]


class TracingMiddleware:
    def __init__(self, app: ASGIApp, *, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traceparent = None
        for name, value in scope["headers"]:
            if name.lower() == b"traceparent":
                traceparent = value.decode("latin-1")
        method = scope.get("method", "")
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        attributes = {"http.request.method": method}
        with self.telemetry.stage(
            f"{method} request", parent=traceparent, kind="server", **attributes
        ) as stage:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                stage.set(
                    **{
                        "http.route": route,
                        "http.response.status_code": status,
                        "fathom.request_id": scope.get("state", {}).get("request_id"),
                    }
                )
                if stage.span is not None:
                    stage.span.update_name(f"{method} {route}")
                if status >= 500:
                    stage.fail(f"http.{status}")
