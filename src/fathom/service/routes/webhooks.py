"""/v1/webhooks: a tenant's admins register endpoints for events and inspect their deliveries."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from fathom.service.audit import record, recording_failure
from fathom.service.deps import CallerDep, FathomDep, PrincipalDep, ServiceDep
from fathom.service.schemas import error_responses
from fathom.store.outbox import EVENT_TYPES
from fathom.store.webhooks import DeliveryInfo, WebhookInfo

__all__ = ["router"]

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

EventType = Literal["job.succeeded", "job.failed", "document.deleted"]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]

WebhookId = Annotated[str, Path(min_length=1, max_length=64, description="From POST /v1/webhooks.")]

_SIGNATURE = (
    "Each event is POSTed as JSON `{id, type, created_at, tenant, data}` with the headers "
    "`X-Fathom-Event`, `X-Fathom-Event-Id` (the same `id`: de-duplicate on it, delivery is at least "
    "once), `X-Fathom-Delivery` and `X-Fathom-Signature: sha256=<hex HMAC-SHA256 of the raw body "
    "with the secret>`. Any status but 2xx, no answer within `webhook_timeout_seconds`, or a refused "
    "connection is retried with exponential backoff and jitter for `webhook_retry_horizon_seconds` "
    "(24 hours), then the delivery is dead-lettered (see `GET /v1/webhooks/{id}/deliveries`)."
)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="http(s) URL events are POSTed to. Loopback, private and link-local addresses are "
        "refused unless the operator allowed them with `webhook_url_allow`.",
        examples=["https://hooks.example.com/fathom"],
    )
    events: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES), description="Events to send.")
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        description="Signs every delivery. Never returned; when left out, fathom generates one and "
        "returns it once, in this response.",
    )


class WebhookOut(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    created_at: str
    created_by: str | None = Field(description="The user of the admin key that registered it.")
    failures: int = Field(description="Consecutive failed attempts (0: healthy).")
    retry_at: float | None = Field(description="While backing off: when the next attempt is due (epoch s).")
    pending: int = Field(description="Deliveries waiting to be sent.")
    dead: int = Field(description="Deliveries dead-lettered after the retry horizon.")
    secret: str | None = Field(
        default=None, description="Only in the response that created it, and only when fathom generated it."
    )

    @classmethod
    def of(cls, info: WebhookInfo, secret: str | None = None) -> WebhookOut:
        return cls(
            webhook_id=info.webhook_id,
            url=info.url,
            events=list(info.events),
            created_at=info.created_at,
            created_by=info.created_by,
            failures=info.failures,
            retry_at=info.retry_at,
            pending=info.pending,
            dead=info.dead,
            secret=secret,
        )


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryOut(BaseModel):
    delivery_id: str
    event_id: str = Field(description="The event's `id`, the same for every endpoint and every attempt.")
    event_type: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    last_status: int | None = Field(description="HTTP status of the last attempt, if it got one.")
    last_error: str | None = Field(
        description="Why the last attempt failed: `http.<status>`, `url.timeout`, `url.unreachable`, "
        "`url.blocked_address` ..."
    )
    next_attempt_at: float | None = Field(description="When a pending delivery is tried next (epoch s).")
    created_at: str
    delivered_at: str | None

    @classmethod
    def of(cls, info: DeliveryInfo) -> DeliveryOut:
        return cls.model_validate(info, from_attributes=True)


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut] = Field(description="Newest first.")


class WebhookDeletedOut(BaseModel):
    webhook_id: str
    deleted: bool = True


@router.post(
    "",
    status_code=201,
    response_model=WebhookOut,
    summary="Register a webhook (tenant admins)",
    description=_SIGNATURE,
    responses=error_responses(401, 403, 413, 422, 429, 503),
)
def create(body: WebhookIn, service: ServiceDep, caller: CallerDep) -> WebhookOut:
    with recording_failure(service, caller, "webhook.create"):
        info, generated = service.fathom.webhooks.create(
            caller.principal, body.url, list(body.events), body.secret
        )
    # Only the host: a webhook URL's path or query may itself be a secret (e.g. chat services').
    where = urlsplit(info.url)
    details = {"host": f"{where.scheme}://{where.netloc.rpartition('@')[2]}", "events": list(info.events)}
    record(service, caller, "webhook.create", info.webhook_id, details=details)
    return WebhookOut.of(info, generated)


@router.get(
    "",
    response_model=WebhookList,
    summary="The tenant's webhooks (tenant admins)",
    description="Secrets are never shown.",
    responses=error_responses(401, 403, 429, 503),
)
def list_webhooks(fathom: FathomDep, principal: PrincipalDep) -> WebhookList:
    return WebhookList(webhooks=[WebhookOut.of(info) for info in fathom.webhooks.endpoints(principal)])


@router.get(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="One webhook (tenant admins)",
    responses=error_responses(401, 403, 404, 429, 503),
)
def get_webhook(webhook_id: WebhookId, fathom: FathomDep, principal: PrincipalDep) -> WebhookOut:
    return WebhookOut.of(fathom.webhooks.get(principal, webhook_id))


@router.delete(
    "/{webhook_id}",
    response_model=WebhookDeletedOut,
    summary="Delete a webhook and its deliveries (tenant admins)",
    responses=error_responses(401, 403, 404, 429, 503),
)
def delete_webhook(webhook_id: WebhookId, service: ServiceDep, caller: CallerDep) -> WebhookDeletedOut:
    with recording_failure(service, caller, "webhook.delete", webhook_id):
        service.fathom.webhooks.delete(caller.principal, webhook_id)
    record(service, caller, "webhook.delete", webhook_id)
    return WebhookDeletedOut(webhook_id=webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    summary="A webhook's deliveries, dead letters included (tenant admins)",
    description="`status=dead` lists the deliveries given up on after the retry horizon.",
    responses=error_responses(401, 403, 404, 422, 429, 503),
)
def deliveries(
    webhook_id: WebhookId,
    fathom: FathomDep,
    principal: PrincipalDep,
    status: Annotated[Literal["pending", "delivered", "dead"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    found = fathom.webhooks.deliveries(principal, webhook_id, status=status, limit=limit)
    return DeliveryList(deliveries=[DeliveryOut.of(info) for info in found])
