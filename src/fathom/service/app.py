"""The FastAPI application of ``fathom serve``.

:func:`create_app` builds an app around one settings object and one :class:`Fathom`; nothing
is read from globals, so tests can build as many apps as they like.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import redis
import structlog
from fastapi import FastAPI
from mcp.server.streamable_http_manager import DEFAULT_MAX_REQUEST_BODY_SIZE

from fathom import __version__
from fathom.api import Fathom
from fathom.config import Settings, load_settings
from fathom.embed.batching import BatchingEmbedder
from fathom.errors import BackendUnavailable
from fathom.service.deps import Service
from fathom.service.embedding import serving_embedder
from fathom.service.errors import install_error_handlers
from fathom.service.limits import create_buckets
from fathom.service.mcp import McpEndpoint
from fathom.service.metrics import Metrics
from fathom.service.middleware import BodyLimits, RequestContextMiddleware
from fathom.service.oidc import OidcAuthenticator
from fathom.service.routes import audit as audit_routes
from fathom.service.routes import conversations, documents, feedback, health, jobs, openai_compat, search, sso
from fathom.service.routes import me as me_routes
from fathom.service.routes import usage as usage_routes
from fathom.service.routes import webhooks as webhook_routes
from fathom.service.tracing import TracingMiddleware
from fathom.service.worker import JobWorkers
from fathom.store import Store
from fathom.web import install_web
from fathom.webhooks import DeliveryWorkers

__all__ = ["check_backends", "create_app", "create_app_from_environment"]

log = structlog.get_logger(__name__)

_DESCRIPTION = """Search your documents and get answers with citations you can check.

Every request under `/v1` needs an API key (`Authorization: Bearer <key>` or `X-API-Key`),
created with `fathom keys create`. A key belongs to a tenant and a user with groups; every read
is filtered to the documents that principal may read, and anything else is a 404.
Errors always have the shape `{"error": {"code", "message", "request_id"}}`.
MCP clients (streamable HTTP) find search, ask and document tools at `/mcp`, with the same keys.
OpenAI clients use `/v1/chat/completions` and `/v1/models` (base URL `http://HOST:PORT/v1`), with
the same keys; their errors come in OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`.

With single sign-on configured (`oidc_issuer`), the same `Authorization: Bearer` header also takes
an OIDC access or ID token (a JWT) of that issuer; its claims give tenant, user, groups and role,
and a refused token gets 401 with an `auth.token_*` code. `/.well-known/oauth-protected-resource`
(RFC 9728) names the issuer for clients that discover it.
"""


def create_app(
    settings: Settings | None = None, *, fathom: Fathom | None = None, start_workers: bool = True
) -> FastAPI:
    """Build the HTTP app.

    Args:
        settings: the settings (default: ``fathom``'s, else loaded from the environment).
        fathom: an open fathom to serve (the app then leaves closing it to the caller).
        start_workers: run ingestion worker threads in this process (``job_workers`` of them).
    """
    owned = fathom is None
    if fathom is None:
        fathom = Fathom(settings=settings or load_settings())
    settings = settings or fathom.settings
    metrics = Metrics()
    fathom.telemetry.add_sink(metrics)
    deliveries = DeliveryWorkers(
        settings.model_copy(update={"webhook_workers": settings.webhook_workers if start_workers else 0}),
        fathom.webhooks.store,
        observer=metrics.observe_delivery,
    )

    def job_finished(status: str, error_code: str | None) -> None:
        metrics.observe_job(status, error_code)
        deliveries.notify()  # its webhook event is in the outbox now

    workers = JobWorkers(
        fathom,
        threads=settings.job_workers if start_workers else 0,
        redis_url=settings.redis_url,
        channel=f"{settings.redis_prefix}:jobs",
        observer=job_finished,
    )
    service = Service(
        settings=settings,
        fathom=fathom,
        buckets=create_buckets(settings.redis_url, settings.redis_prefix),
        metrics=metrics,
        workers=workers,
        oidc=OidcAuthenticator.from_settings(settings, observe=metrics.observe_oidc_fetch),
    )
    mcp = McpEndpoint(service)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        workers.start()
        deliveries.start()
        log.info("service.started", workers=settings.job_workers if start_workers else 0)
        try:
            async with mcp.running():
                yield
        finally:
            deliveries.stop()
            workers.stop()
            if owned:
                fathom.close()

    app = FastAPI(
        title="fathom",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        # /docs is served offline by fathom.web (FastAPI's pages load scripts from a CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    install_error_handlers(app)
    body_limits = BodyLimits(
        upload=settings.max_upload_bytes,
        # The MCP library has its own cap (4 MiB); refusing here gives the service's error body.
        mcp=min(settings.max_upload_bytes, DEFAULT_MAX_REQUEST_BODY_SIZE),
        other=settings.max_request_bytes,
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics, body_limits=body_limits)
    if fathom.telemetry.tracing:
        app.add_middleware(TracingMiddleware, telemetry=fathom.telemetry)  # outermost: the whole request
    for module in (documents, jobs, search, feedback, health):
        app.include_router(module.router)
    app.include_router(conversations.router)
    app.include_router(openai_compat.router)
    app.include_router(webhook_routes.router)
    app.include_router(usage_routes.router)
    app.include_router(me_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(mcp.router)
    app.include_router(sso.router)
    install_web(app, connect_sources=lambda: _sign_in_origins(service))
    _document_query_limit(app, settings.max_query_chars)
    return app


def _sign_in_origins(service: Service) -> list[str]:
    """Origins the web page may call besides its own: the identity provider's token endpoint,
    when the page signs in (the code is exchanged from the browser, as a public client must)."""
    if service.oidc is None or service.settings.oidc_client_id is None:
        return []
    try:
        endpoint = service.oidc.metadata().token_endpoint
    except BackendUnavailable:
        return []
    if not endpoint:
        return []
    parts = urlsplit(endpoint)
    return [f"{parts.scheme}://{parts.netloc}"]


def _document_query_limit(app: FastAPI, max_query_chars: int) -> None:
    """Show the configured ``max_query_chars`` as the schema's bound on queries.

    The request models carry only a static upper bound; a longer query within it is refused
    with 422 ``query.too_long``, so the schema states the configured limit.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = generate()["components"]["schemas"]
            for name, field in (("SearchIn", "query"), ("AskIn", "query"), ("MessageIn", "question")):
                query = schemas[name]["properties"][field]
                query["maxLength"] = min(query["maxLength"], max_query_chars)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def check_backends(settings: Settings) -> None:
    """Check at start that the store of record opens (and is migrated) and that Redis answers.

    At run time an outage only makes requests answer 503 until it ends; at start it is far more
    likely a wrong setting, so ``fathom serve`` refuses to start instead.

    Raises:
        BackendUnavailable: the database or Redis cannot be reached (the message names which,
            never a password).
    """
    Store(settings.resolved_database_url, lock_dir=settings.home).close()
    if not settings.redis_url:
        return
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError:
        where = urlsplit(settings.redis_url)
        address = f"{where.hostname}:{where.port or 6379}" if where.hostname else where.path
        raise BackendUnavailable(f"cannot reach Redis at {address}") from None
    finally:
        client.close()


def create_app_from_environment() -> FastAPI:
    """The app ``fathom serve`` runs in each uvicorn worker (settings from ``FATHOM_*``)."""
    settings = load_settings()
    # A server logs JSON lines at INFO unless FATHOM_LOG_JSON / FATHOM_LOG_LEVEL say otherwise.
    defaults = {"log_json": True, "log_level": "INFO"}
    settings = settings.model_copy(
        update={k: v for k, v in defaults.items() if k not in settings.model_fields_set}
    )
    # A forward pass releases the interpreter lock around each of its hundreds of kernels and
    # must get it back after each; while request threads run Python, every return waited up to
    # the switch interval (5 ms by default) and one query took several times longer.
    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
    # The model loads now, not during the first request; queries of concurrent requests are
    # embedded together (query_batch_max, query_batch_window_ms).
    embedder = serving_embedder(settings)
    fathom = Fathom(settings=settings, embedder=embedder)
    app = create_app(settings, fathom=fathom)
    if isinstance(embedder, BatchingEmbedder):
        embedder.observe = app.state.service.metrics.observe_query_batch
    return app
