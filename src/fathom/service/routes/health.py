"""Liveness, readiness and Prometheus metrics (no API key: keep them off public networks)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from fathom.service.deps import ServiceDep
from fathom.service.schemas import HealthOut, ReadyOut

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, summary="The process is up")
async def healthz() -> HealthOut:
    # async: liveness must not wait for a worker thread, which busy requests may all hold.
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="The store of record (and Redis, when configured) answer",
    description="`checks` names each dependency and whether it answered: `database`, and `redis` "
    "when `redis_url` is set. 503 while any of them does not.",
    responses={503: {"model": ReadyOut, "description": "A dependency does not answer."}},
)
def readyz(service: ServiceDep) -> JSONResponse:
    checks: dict[str, bool] = {}
    try:
        with service.fathom.store.connection() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:
        checks["database"] = False
    if service.settings.redis_url:
        checks["redis"] = service.buckets.ping()
    ready = all(checks.values())
    body = ReadyOut(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def metrics(service: ServiceDep) -> Response:
    body = service.metrics.render(service.fathom.jobs.counts())
    return Response(body, media_type=CONTENT_TYPE_LATEST)
