"""/mcp: the MCP tools over streamable HTTP, behind the same API keys and limits as /v1.

``/mcp`` is an ordinary FastAPI route, so the key check, the per-key request budget and the
401/429 error bodies are the REST API's own (:func:`~fathom.service.deps.authenticate`). The
route stores the caller on the request and hands the request to the MCP session manager; the
tools read the caller back, so a call acts for the key of the HTTP request that carried it.

The manager runs stateless (no session state between requests, like the rest of the service, so
any process behind a load balancer can answer) and answers with JSON. It must run inside the
app's lifespan: :meth:`McpEndpoint.running`.

``ingest_text`` may wait up to 300 s for its job. The wait sleeps on the event loop, not on a
worker thread, and each key has at most ``mcp_waits_per_key`` waits at once in a process
(further calls answer at once with the job queued), so waiting calls cannot hold the threads
or memory that other keys' requests and health checks need.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager

from fastapi import APIRouter, Request, Response
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from fathom.domain import Answer, Hit
from fathom.errors import Unauthorized
from fathom.mcp.server import create_server
from fathom.mcp.tools import ToolContext
from fathom.service.audit import record_answer, record_search
from fathom.service.deps import Caller, CallerDep, Service

__all__ = ["KeyedSlots", "McpEndpoint"]

_CALLER = "mcp_caller"


class KeyedSlots:
    """At most ``per_key`` holders of a slot per key at once (in this process)."""

    def __init__(self, per_key: int) -> None:
        self._per_key = per_key
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, key: str) -> Iterator[bool]:
        """Hold one of ``key``'s slots while inside; yields False (and holds none) when all are taken."""
        with self._lock:
            taken = self._held.get(key, 0) < self._per_key
            if taken:
                self._held[key] = self._held.get(key, 0) + 1
        try:
            yield taken
        finally:
            if taken:
                with self._lock:
                    self._held[key] -= 1
                    if not self._held[key]:
                        del self._held[key]


class _HandOver(Response):
    """A response that lets the MCP session manager answer the request itself."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        super().__init__()
        self._manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._manager.handle_request(scope, receive, send)


class McpEndpoint:
    """The ``/mcp`` route of one app and the MCP session manager behind it."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._waits = KeyedSlots(service.settings.mcp_waits_per_key)
        self.manager = StreamableHTTPSessionManager(
            app=create_server(self._context),
            stateless=True,
            json_response=True,
            # Every request needs an API key, which a page that rebinds DNS cannot present; and
            # the allowed Host names of a deployment behind a proxy are not known here.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.router = APIRouter(tags=["mcp"])
        manager = self.manager

        async def mcp_endpoint(request: Request, caller: CallerDep) -> Response:
            request.scope.setdefault("state", {})[_CALLER] = caller
            return _HandOver(manager)

        self.router.add_api_route(
            "/mcp",
            mcp_endpoint,
            methods=["GET", "POST", "DELETE"],
            include_in_schema=False,
            response_class=Response,
        )

    def running(self) -> AbstractAsyncContextManager[None]:
        """The session manager's task group; enter it once, for the app's lifetime."""
        return self.manager.run()

    def _context(self, request: Request | None) -> ToolContext:
        caller = request.scope.get("state", {}).get(_CALLER) if request is not None else None
        if not isinstance(caller, Caller):  # only reachable through the authenticated route
            raise Unauthorized("a valid API key is required", code="auth.missing_key")
        service = self._service

        def job_queued() -> None:
            service.metrics.jobs_enqueued.inc()
            service.workers.notify()

        def before_answer() -> None:
            service.take_answer_budget(caller.key_id)

        def after_answer(answer: Answer) -> None:
            service.charge_answer_tokens(caller.key_id, len(answer.answer.split()))

        def searched(query: str, hits: Sequence[Hit]) -> None:
            record_search(service, caller, query, hits)

        def answered(question: str, answer: Answer, answer_id: str) -> None:
            record_answer(service, caller, question, answer, answer_id)

        waits = self._waits

        def wait_slot() -> AbstractContextManager[bool]:
            return waits.hold(caller.key_id)

        return ToolContext(
            fathom=service.fathom,
            principal=caller.principal,
            job_queued=job_queued,
            before_answer=before_answer,
            after_answer=after_answer,
            key_id=caller.key_id,
            wait_slot=wait_slot,
            searched=searched,
            answered=answered,
        )
