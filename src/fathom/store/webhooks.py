"""Webhook endpoints and their delivery outbox in the store of record.

An event (a job finished, a document deleted) writes one delivery row per subscribed endpoint
in the very transaction that makes the event happen (:func:`record_event`): the event is
delivered if and only if it happened, whatever crashes in between. Delivery workers in any
serve process claim an *endpoint* with a lease (a compare-and-set update, as jobs are claimed)
and send its pending deliveries oldest first; a failed attempt puts the whole endpoint into
backoff, so an endpoint that is down costs one attempt per backoff step, not one per event.
A delivery still failing past the retry horizon is dead-lettered (kept, status ``dead``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from fathom.store.database import Store
from fathom.store.schema import WebhookDeliveryRow, WebhookRow, utcnow

__all__ = [
    "ClaimedEndpoint",
    "DeliveryInfo",
    "PendingDelivery",
    "WebhookInfo",
    "WebhookStore",
]

# Endpoints one claim looks at before it leaves the rest to the next poll.
_CLAIM_CANDIDATES = 8


@dataclass(frozen=True, slots=True)
class WebhookInfo:
    """An endpoint as its tenant's admins see it (never with its secret)."""

    webhook_id: str
    url: str
    events: tuple[str, ...]
    created_at: str
    created_by: str | None
    failures: int
    retry_at: float | None
    pending: int = 0
    dead: int = 0


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    """One event's delivery to one endpoint."""

    delivery_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: float | None
    created_at: str
    delivered_at: str | None


@dataclass(frozen=True, slots=True)
class ClaimedEndpoint:
    """An endpoint a delivery worker holds the lease of, with what signing needs."""

    webhook_id: str
    url: str
    secret: str
    failures: int


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    delivery_id: str
    event_id: str
    event_type: str
    body: str
    attempts: int
    created_at: datetime


def _info(row: WebhookRow, pending: int = 0, dead: int = 0) -> WebhookInfo:
    return WebhookInfo(
        webhook_id=row.id,
        url=row.url,
        events=tuple(row.events or ()),
        created_at=row.created_at.isoformat(),
        created_by=row.created_by,
        failures=row.failures,
        retry_at=row.retry_at,
        pending=pending,
        dead=dead,
    )


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes of what was stored as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)


class WebhookStore:
    """Endpoints (create, list, delete), their deliveries, and the delivery workers' claims."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- endpoints -------------------------------------------------------------------------

    def create(
        self, tenant: str, url: str, events: Sequence[str], secret: str, created_by: str | None
    ) -> WebhookInfo:
        with self._store.session() as session:
            row = WebhookRow(
                id=uuid.uuid4().hex,
                tenant_id=tenant,
                url=url,
                events=list(dict.fromkeys(events)),
                secret=secret,
                created_by=created_by,
                created_at=utcnow(),
                failures=0,
            )
            session.add(row)
            session.flush()
            return _info(row)

    def count(self, tenant: str) -> int:
        with self._store.connection() as conn:
            query = select(func.count(WebhookRow.id)).where(WebhookRow.tenant_id == tenant)
            return int(conn.execute(query).scalar_one())

    def endpoints(self, tenant: str) -> list[WebhookInfo]:
        """The tenant's endpoints, oldest first, with their pending and dead deliveries."""
        with self._store.session() as session:
            rows = session.scalars(
                select(WebhookRow).where(WebhookRow.tenant_id == tenant).order_by(WebhookRow.created_at)
            ).all()
            counts = self._status_counts(session, [row.id for row in rows])
            return [
                _info(row, counts.get((row.id, "pending"), 0), counts.get((row.id, "dead"), 0))
                for row in rows
            ]

    def get(self, tenant: str, webhook_id: str) -> WebhookInfo | None:
        with self._store.session() as session:
            row = session.get(WebhookRow, webhook_id)
            if row is None or row.tenant_id != tenant:
                return None
            counts = self._status_counts(session, [row.id])
            return _info(row, counts.get((row.id, "pending"), 0), counts.get((row.id, "dead"), 0))

    @staticmethod
    def _status_counts(session: Session, ids: Sequence[str]) -> dict[tuple[str, str], int]:
        if not ids:
            return {}
        rows = session.execute(
            select(WebhookDeliveryRow.webhook_id, WebhookDeliveryRow.status, func.count())
            .where(WebhookDeliveryRow.webhook_id.in_(list(ids)))
            .group_by(WebhookDeliveryRow.webhook_id, WebhookDeliveryRow.status)
        ).all()
        return {(str(w), str(s)): int(n) for w, s, n in rows}

    def delete(self, tenant: str, webhook_id: str) -> bool:
        """Delete an endpoint and its deliveries (pending ones are never sent); False if none."""
        with self._store.session() as session:
            row = session.get(WebhookRow, webhook_id)
            if row is None or row.tenant_id != tenant:
                return False
            session.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.webhook_id == webhook_id))
            session.delete(row)
            return True

    def deliveries(
        self, tenant: str, webhook_id: str, *, status: str | None = None, limit: int = 100
    ) -> list[DeliveryInfo]:
        """An endpoint's deliveries, newest first (``status``: only those)."""
        query = (
            select(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.webhook_id == webhook_id, WebhookDeliveryRow.tenant_id == tenant)
            .order_by(WebhookDeliveryRow.created_at.desc(), WebhookDeliveryRow.id)
            .limit(limit)
        )
        if status is not None:
            query = query.where(WebhookDeliveryRow.status == status)
        with self._store.session() as session:
            return [
                DeliveryInfo(
                    delivery_id=row.id,
                    event_id=row.event_id,
                    event_type=row.event_type,
                    status=row.status,
                    attempts=row.attempts,
                    last_status=row.last_status,
                    last_error=row.last_error,
                    next_attempt_at=row.next_attempt_at,
                    created_at=_aware(row.created_at).isoformat(),
                    delivered_at=_aware(row.delivered_at).isoformat() if row.delivered_at else None,
                )
                for row in session.scalars(query)
            ]

    # -- delivery workers ------------------------------------------------------------------

    def claim(self, worker: str, lease_seconds: float) -> ClaimedEndpoint | None:
        """Take an endpoint that has pending deliveries, is out of backoff and is not held by
        another worker; None when there is none."""
        now = time.time()
        due = (WebhookRow.retry_at.is_(None)) | (WebhookRow.retry_at <= now)
        free = (WebhookRow.lease_until.is_(None)) | (WebhookRow.lease_until < now)
        waiting = exists().where(
            WebhookDeliveryRow.webhook_id == WebhookRow.id, WebhookDeliveryRow.status == "pending"
        )
        with self._store.session() as session:
            candidates = session.scalars(
                select(WebhookRow.id)
                .where(due, free, waiting)
                .order_by(func.coalesce(WebhookRow.retry_at, 0.0), WebhookRow.id)
                .limit(_CLAIM_CANDIDATES)
            ).all()
        for webhook_id in candidates:
            with self._store.session() as session:
                taken = session.execute(
                    update(WebhookRow)
                    .where(WebhookRow.id == webhook_id, due, free)
                    .values(lease_owner=worker, lease_until=now + lease_seconds)
                )
                if taken.rowcount != 1:  # type: ignore[attr-defined]
                    continue  # another worker was faster
                row = session.get(WebhookRow, webhook_id)
                assert row is not None
                return ClaimedEndpoint(row.id, row.url, row.secret, row.failures)
        return None

    def renew(self, webhook_id: str, worker: str, lease_seconds: float) -> bool:
        """Extend the lease; False when it was lost (or the endpoint was deleted)."""
        with self._store.session() as session:
            result = session.execute(
                update(WebhookRow)
                .where(WebhookRow.id == webhook_id, WebhookRow.lease_owner == worker)
                .values(lease_until=time.time() + lease_seconds)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def release(self, webhook_id: str, worker: str) -> None:
        with self._store.session() as session:
            session.execute(
                update(WebhookRow)
                .where(WebhookRow.id == webhook_id, WebhookRow.lease_owner == worker)
                .values(lease_owner=None, lease_until=None)
            )

    def next_pending(self, webhook_id: str) -> PendingDelivery | None:
        """The endpoint's oldest pending delivery."""
        with self._store.session() as session:
            row = session.scalars(
                select(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.webhook_id == webhook_id, WebhookDeliveryRow.status == "pending")
                .order_by(WebhookDeliveryRow.created_at, WebhookDeliveryRow.id)
                .limit(1)
            ).first()
            if row is None:
                return None
            return PendingDelivery(
                row.id, row.event_id, row.event_type, row.body, row.attempts, _aware(row.created_at)
            )

    def delivered(self, webhook_id: str, delivery_id: str, status: int) -> None:
        """Mark a delivery done; the endpoint leaves backoff."""
        now = utcnow()
        with self._store.session() as session:
            session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == delivery_id)
                .values(
                    status="delivered",
                    attempts=WebhookDeliveryRow.attempts + 1,
                    last_status=status,
                    last_error=None,
                    next_attempt_at=None,
                    delivered_at=now,
                    updated_at=now,
                )
            )
            session.execute(
                update(WebhookRow).where(WebhookRow.id == webhook_id).values(failures=0, retry_at=None)
            )

    def failed(
        self,
        webhook_id: str,
        delivery_id: str,
        *,
        status: int | None,
        error: str,
        retry_at: float,
        horizon_seconds: float,
    ) -> int:
        """Record a failed attempt: the endpoint backs off until ``retry_at``; deliveries of it
        pending for longer than ``horizon_seconds`` (this one included) are dead-lettered.

        Returns how many deliveries were dead-lettered.
        """
        now = utcnow()
        with self._store.session() as session:
            session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == delivery_id)
                .values(
                    attempts=WebhookDeliveryRow.attempts + 1,
                    last_status=status,
                    last_error=error[:128],
                    updated_at=now,
                )
            )
            pending = (WebhookDeliveryRow.webhook_id == webhook_id) & (WebhookDeliveryRow.status == "pending")
            dead = session.execute(
                update(WebhookDeliveryRow)
                .where(pending, WebhookDeliveryRow.created_at <= now - timedelta(seconds=horizon_seconds))
                .values(status="dead", next_attempt_at=None, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
            session.execute(update(WebhookDeliveryRow).where(pending).values(next_attempt_at=retry_at))
            session.execute(
                update(WebhookRow)
                .where(WebhookRow.id == webhook_id)
                .values(failures=WebhookRow.failures + 1, retry_at=retry_at)
            )
            return int(dead or 0)

    def purge(self, older_than_seconds: float) -> int:
        """Delete delivered and dead deliveries last updated longer ago than this."""
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        with self._store.session() as session:
            result = session.execute(
                delete(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.status.in_(("delivered", "dead")),
                    WebhookDeliveryRow.updated_at < cutoff,
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
