"""The webhook outbox: events written in the transaction of the change they report.

:func:`record_event` adds one delivery row per subscribed endpoint to the caller's session, so
an event exists exactly when its change committed (see :mod:`fathom.store.webhooks`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fathom.store.schema import WebhookDeliveryRow, WebhookRow, utcnow

__all__ = ["EVENT_TYPES", "record_event"]

# Events a webhook may subscribe to.
EVENT_TYPES = ("job.succeeded", "job.failed", "document.deleted")


def record_event(session: Session, tenant: str, event_type: str, data: Mapping[str, Any]) -> None:
    """Queue ``event_type`` for every endpoint of ``tenant`` subscribed to it, in ``session``'s
    transaction (so the event is delivered exactly when the change it reports commits).

    Every endpoint gets the same body, with one event id to de-duplicate on.
    """
    endpoints = session.execute(
        select(WebhookRow.id, WebhookRow.events).where(WebhookRow.tenant_id == tenant)
    ).all()
    subscribed = [endpoint_id for endpoint_id, events in endpoints if event_type in (events or ())]
    if not subscribed:
        return
    now = utcnow()
    event_id = f"evt_{uuid.uuid4().hex}"
    body = json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "created_at": now.isoformat().replace("+00:00", "Z"),
            "tenant": tenant,
            "data": dict(data),
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    session.add_all(
        WebhookDeliveryRow(
            id=uuid.uuid4().hex,
            webhook_id=endpoint_id,
            tenant_id=tenant,
            event_id=event_id,
            event_type=event_type,
            body=body,
            status="pending",
            attempts=0,
            next_attempt_at=None,
            created_at=now,
            updated_at=now,
        )
        for endpoint_id in subscribed
    )
