"""Retention: answers, feedback, finished jobs and audit events older than their tenant's ``retention_days``.

One place applies it, for ``fathom serve`` (hourly, from the job worker) and ``fathom compact``.
Conversations have their own setting (``conversation_retention_days``, see
:mod:`fathom.store.conversations`). Rows are deleted; ``secure_delete`` zeroes them in the
SQLite file and ``fathom compact`` clears the WAL (docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fathom.store.audit import PRUNED, AuditEvent, append
from fathom.store.database import Store
from fathom.store.schema import AnswerRow, AuditEventRow, FeedbackRow, JobRow, utcnow

__all__ = ["KINDS", "RetentionPolicy", "purge_expired"]

KINDS = ("answers", "feedback", "jobs", "audit")
# Tenant (or "*") -> kind -> days, as ``Settings.retention_days`` holds it.
RetentionPolicy = Mapping[str, Mapping[Any, float]]
_FINISHED = ("succeeded", "failed")


def _days(policy: RetentionPolicy, tenant: str, kind: str) -> float | None:
    for scope in (tenant, "*"):
        days = policy.get(scope, {}).get(kind)
        if days is not None:
            return float(days) if days > 0 else None
    return None


def purge_expired(store: Store, policy: RetentionPolicy, now: datetime | None = None) -> dict[str, int]:
    """Delete what each tenant keeps no longer; returns rows removed by kind."""
    removed = dict.fromkeys(KINDS, 0)
    if not policy:
        return removed
    moment = now or utcnow()
    with store.session() as session:
        tenants = set(session.scalars(select(AnswerRow.tenant_id).distinct()))
        tenants |= set(session.scalars(select(JobRow.tenant_id).distinct()))
        tenants |= set(session.scalars(select(FeedbackRow.tenant_id).distinct()))
        tenants |= set(session.scalars(select(AuditEventRow.tenant_id).distinct()))
        for tenant in sorted(tenants):
            days = _days(policy, tenant, "feedback")
            if days is not None:
                cutoff = moment - timedelta(days=days)
                removed["feedback"] += _count(
                    session.execute(
                        delete(FeedbackRow).where(
                            FeedbackRow.tenant_id == tenant, FeedbackRow.created_at < cutoff
                        )
                    )
                )
            days = _days(policy, tenant, "answers")
            if days is not None:
                cutoff = moment - timedelta(days=days)
                old = select(AnswerRow.id).where(AnswerRow.tenant_id == tenant, AnswerRow.created_at < cutoff)
                # Feedback on an answer goes with it (not only where the foreign key cascades).
                removed["feedback"] += _count(
                    session.execute(delete(FeedbackRow).where(FeedbackRow.answer_id.in_(old)))
                )
                removed["answers"] += _count(
                    session.execute(
                        delete(AnswerRow).where(AnswerRow.tenant_id == tenant, AnswerRow.created_at < cutoff)
                    )
                )
            days = _days(policy, tenant, "jobs")
            if days is not None:
                cutoff = moment - timedelta(days=days)
                removed["jobs"] += _count(
                    session.execute(
                        delete(JobRow).where(
                            JobRow.tenant_id == tenant,
                            JobRow.status.in_(_FINISHED),
                            JobRow.finished_at.is_not(None),
                            JobRow.finished_at < cutoff,
                        )
                    )
                )
            days = _days(policy, tenant, "audit")
            if days is not None:
                removed["audit"] += _prune_audit(session, tenant, moment - timedelta(days=days))
    return removed


def _prune_audit(session: Session, tenant: str, cutoff: datetime) -> int:
    """Remove a tenant's audit events older than ``cutoff``, keeping its chain verifiable.

    An ``audit.pruned`` event is appended first (chained to the head, so it cannot be changed
    unnoticed) naming the last removed ``seq`` and its hash: ``fathom audit verify`` starts the
    chain there (:func:`fathom.store.audit._pruned_starts`).
    """
    last = session.execute(
        select(AuditEventRow.seq, AuditEventRow.hash)
        .where(AuditEventRow.tenant_id == tenant, AuditEventRow.created_at < cutoff)
        .order_by(AuditEventRow.seq.desc())
        .limit(1)
    ).one_or_none()
    if last is None:
        return 0
    through, last_hash = int(last[0]), str(last[1])
    append(
        session,
        AuditEvent(
            tenant,
            PRUNED,
            details={"through_seq": through, "last_hash": last_hash, "before": cutoff.isoformat()},
        ),
    )
    return _count(
        session.execute(
            delete(AuditEventRow).where(AuditEventRow.tenant_id == tenant, AuditEventRow.seq <= through)
        )
    )


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
