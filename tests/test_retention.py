"""Retention (``retention_days``): old answers, feedback and finished jobs go, per tenant."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, func, select, update

from fathom import Fathom
from fathom.store.audit import AuditEvent
from fathom.store.schema import AnswerRow, AuditEventRow, FeedbackRow, JobRow, utcnow


def _seed(fathom: Fathom, tenant: str, age_days: float, n: int) -> None:
    when = utcnow() - timedelta(days=age_days)
    with fathom.store.session() as session:
        answer_id = f"{tenant}{n}".ljust(32, "a")[:32]
        session.add(AnswerRow(id=answer_id, tenant_id=tenant, user_id="u", created_at=when))
        session.flush()
        session.add(
            FeedbackRow(answer_id=answer_id, tenant_id=tenant, user_id="u", rating="up", created_at=when)
        )
        for status in ("succeeded", "queued"):
            session.add(
                JobRow(
                    id=f"{tenant}{n}{status}".ljust(32, "j")[:32],
                    tenant_id=tenant,
                    document_id="d" * 32,
                    source="s",
                    content=b"",
                    status=status,
                    created_at=when,
                    finished_at=when if status == "succeeded" else None,
                )
            )


def _counts(fathom: Fathom, tenant: str) -> tuple[int, int, int]:
    with fathom.store.connection() as conn:
        return tuple(  # type: ignore[return-value]
            int(
                conn.execute(
                    select(func.count()).select_from(row).where(row.tenant_id == tenant)
                ).scalar_one()
            )
            for row in (AnswerRow, FeedbackRow, JobRow)
        )


def test_compact_applies_each_tenants_retention(tmp_path: Path) -> None:
    policy = {"*": {"answers": 30, "jobs": 7}, "keep": {"answers": 0, "jobs": 0}}
    with Fathom(home=tmp_path / "home", embedder="hash:64", retention_days=policy) as fathom:
        for tenant in ("acme", "keep"):
            _seed(fathom, tenant, age_days=60, n=1)
            _seed(fathom, tenant, age_days=1, n=2)
        done = fathom.compact()
        # acme: the 60-day-old answer (and the feedback on it) and finished job are gone; the
        # queued job stays whatever its age. "keep" sets 0: kept until deleted.
        assert done.expired == {"answers": 1, "feedback": 1, "jobs": 1, "audit": 0}
        assert _counts(fathom, "acme") == (1, 1, 3)
        assert _counts(fathom, "keep") == (2, 2, 4)


def test_audit_retention_keeps_the_chain_verifiable(tmp_path: Path) -> None:
    with Fathom(home=tmp_path / "home", embedder="hash:64", retention_days={"acme": {"audit": 30}}) as fathom:
        for n in range(3):
            fathom.audit.record(AuditEvent("acme", "search", target=f"q{n}"))
            fathom.audit.record(AuditEvent("other", "search", target=f"q{n}"))
        with fathom.store.session() as session:  # the first two of acme's events are 40 days old
            session.execute(
                update(AuditEventRow)
                .where(AuditEventRow.tenant_id == "acme", AuditEventRow.seq <= 2)
                .values(created_at=utcnow() - timedelta(days=40))
            )
        assert fathom.compact().expired["audit"] == 2
        kept = fathom.audit.events(tenant="acme")
        assert [(e.seq, e.action) for e in kept] == [(3, "search"), (4, "audit.pruned")]
        assert kept[1].details["through_seq"] == 2
        assert fathom.audit.verify().ok
        assert len(fathom.audit.events(tenant="other")) == 3

        # Without the pruned event's word for it, the gap is a break.
        with fathom.store.session() as session:
            session.execute(
                delete(AuditEventRow).where(AuditEventRow.seq == 4, AuditEventRow.tenant_id == "acme")
            )
        broken = fathom.audit.verify().broken
        assert broken is not None and broken.reason == "missing"
