"""Durable ingestion jobs in the store of record.

A job row holds the upload until a worker has committed the document. Workers claim a job
with a compare-and-set update (portable across SQLite and PostgreSQL, safe between processes)
that sets a lease; a worker renews its lease while it works. A job whose lease ran out belongs
to a worker that died: the next claim retries it, or fails it after ``max_attempts``. The
document itself commits in one transaction, so a retried job finds either nothing or the whole
document (then its content hash matches and the retry finishes at once).

Tenants share the workers round-robin (see :mod:`fathom.store.job_schedule`): a tenant with
many queued jobs delays another tenant's job by at most about one job per worker. Optional caps
bound what one tenant may hold: jobs running at once, and bytes of uploads waiting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from fathom.domain import JobInfo, JobStatus, Principal
from fathom.errors import Conflict, LimitExceeded
from fathom.store.database import Store
from fathom.store.job_schedule import (
    claimable,
    estimated_position,
    recent_run_seconds,
    tenant_queues,
)
from fathom.store.outbox import record_event
from fathom.store.schema import DocumentRow, IdempotencyRow, JobRow, utcnow

__all__ = ["ClaimedJob", "JobQueue", "NewJob", "acl_pair", "request_hash"]

log = structlog.get_logger(__name__)

# Tenants (in round-robin order) one claim tries before it leaves the job to the next poll, and
# jobs read per tenant (past ones out of attempts, which are failed on the way).
_CLAIM_TENANTS = 8
_CLAIM_JOBS_PER_TENANT = 4
# Retry-After of a full queue when no job has finished yet to say how long jobs take.
_DEFAULT_RUN_SECONDS = 5.0


def request_hash(*parts: bytes | str) -> str:
    """A digest of a request's content, to tell a retry from a different request."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class NewJob:
    """What an upload asks for."""

    tenant: str
    owner_user: str | None
    source: str
    title: str | None
    content: bytes
    metadata: dict[str, Any]
    acl_users: tuple[str, ...]
    acl_groups: tuple[str, ...]
    owner_groups: tuple[str, ...] = ()
    owner_admin: bool = False
    owner_role: str | None = None
    owner_key: str | None = None
    # The write ACL (users, groups) the upload sets; None: keep the document's.
    write_acl: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    # W3C traceparent of the upload request, when tracing is on.
    trace_parent: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker holds the lease of."""

    job_id: str
    document_id: str
    tenant: str
    source: str
    title: str | None
    content: bytes
    metadata: dict[str, Any]
    acl_users: tuple[str, ...]
    acl_groups: tuple[str, ...]
    attempt: int
    owner_user: str | None = None
    owner_groups: tuple[str, ...] = ()
    owner_admin: bool = False
    trace_parent: str | None = None
    owner_role: str | None = None
    owner_key: str | None = None
    write_acl: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    @property
    def submitter(self) -> Principal:
        """The principal that submitted the job, as it was then: the worker writes as it (a job
        queued before roles: an editor, or an admin by ``owner_admin``)."""
        role = self.owner_role or ("admin" if self.owner_admin else "editor")
        return Principal(
            tenant=self.tenant,
            user=self.owner_user,
            groups=self.owner_groups,
            role=role,
            key_id=self.owner_key,
        )


def _info(row: JobRow) -> JobInfo:
    status: JobStatus = row.status  # type: ignore[assignment]
    return JobInfo(
        job_id=row.id,
        document_id=row.document_id,
        status=status,
        attempts=row.attempts,
        error_code=row.error_code,
        reason=row.reason,
        created_at=row.created_at.isoformat(),
        finished_at=row.finished_at.isoformat() if row.finished_at else None,
    )


class JobQueue:
    """Enqueue, claim, renew and finish ingestion jobs.

    Args:
        store: the store of record holding the jobs.
        lease_seconds: how long a claim lasts without a heartbeat.
        max_attempts: claims of one job before it fails with ``job.worker_lost``.
        tenant_max_running: jobs of one tenant running at once (0: no cap); a worker passes
            over a tenant at its cap.
        tenant_max_queued_bytes: bytes of one tenant's unfinished uploads (0: no cap); an
            upload past it is refused.
    """

    def __init__(
        self,
        store: Store,
        *,
        lease_seconds: float = 30.0,
        max_attempts: int = 3,
        tenant_max_running: int = 0,
        tenant_max_queued_bytes: int = 0,
    ) -> None:
        self._store = store
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.tenant_max_running = tenant_max_running
        self.tenant_max_queued_bytes = tenant_max_queued_bytes

    def enqueue(
        self, job: NewJob, *, idempotency: tuple[str, str, str] | None = None
    ) -> tuple[JobInfo, bool]:
        """Store a new job; returns it and whether it is new.

        Args:
            job: what to ingest.
            idempotency: ``(scope, key, request hash)``: a repeat of the same request under the
                same key returns the first job instead of a new one.

        Raises:
            Conflict: the idempotency key was used for a different request.
            LimitExceeded: the tenant's unfinished uploads would pass ``tenant_max_queued_bytes``
                (``upload.queue_full``, with ``retry_after``), or this upload alone would
                (``upload.too_large``).
        """
        if idempotency is not None:
            found = self._replay(*idempotency)
            if found is not None:
                return found, False
        try:
            with self._store.session() as session:
                self._check_queued_bytes(session, job)
                existing = session.scalars(
                    select(DocumentRow.id).where(
                        DocumentRow.tenant_id == job.tenant, DocumentRow.source == job.source
                    )
                ).one_or_none()
                now = utcnow()
                row = JobRow(
                    id=uuid.uuid4().hex,
                    tenant_id=job.tenant,
                    owner_user=job.owner_user,
                    owner_groups=list(job.owner_groups),
                    owner_admin=job.owner_admin,
                    owner_role=job.owner_role,
                    owner_key=job.owner_key,
                    write_users=list(job.write_acl[0]) if job.write_acl is not None else None,
                    write_groups=list(job.write_acl[1]) if job.write_acl is not None else None,
                    document_id=existing or uuid.uuid4().hex,
                    source=job.source,
                    title=job.title,
                    content=job.content,
                    metadata_=dict(job.metadata),
                    acl_users=list(job.acl_users),
                    acl_groups=list(job.acl_groups),
                    status="queued",
                    attempts=0,
                    max_attempts=self.max_attempts,
                    created_at=now,
                    updated_at=now,
                    trace_parent=job.trace_parent,
                )
                session.add(row)
                if idempotency is not None:
                    scope, key, digest = idempotency
                    session.add(
                        IdempotencyRow(
                            scope=scope,
                            key=key,
                            request_hash=digest,
                            job_id=row.id,
                            document_id=row.document_id,
                            created_at=now,
                        )
                    )
                info = _info(row)
        except IntegrityError:
            # Two requests with one idempotency key raced; the other one won.
            if idempotency is None:
                raise
            found = self._replay(*idempotency)
            if found is None:
                raise
            return found, False
        return info, True

    def _check_queued_bytes(self, session: Session, job: NewJob) -> None:
        cap = self.tenant_max_queued_bytes
        if not cap:
            return
        if len(job.content) > cap:
            raise LimitExceeded(
                f"the document is larger than the {cap} byte limit of uploads waiting per tenant",
                code="upload.too_large",
            )
        # Uploads stay in their job until it finishes: count queued and running ones. Two
        # uploads checked at the same instant may both pass; the cap is a bound on what one
        # tenant can park in the database, not an exact quota.
        waiting = session.scalar(
            select(func.coalesce(func.sum(func.length(JobRow.content)), 0)).where(
                JobRow.tenant_id == job.tenant, JobRow.status.in_(("queued", "running"))
            )
        )
        if int(waiting or 0) + len(job.content) > cap:
            raise LimitExceeded(
                "this tenant's uploads waiting for ingestion are at their limit; retry when some "
                "have been ingested",
                code="upload.queue_full",
                retry_after=recent_run_seconds(session) or _DEFAULT_RUN_SECONDS,
            )

    def _replay(self, scope: str, key: str, digest: str) -> JobInfo | None:
        with self._store.session() as session:
            earlier = session.get(IdempotencyRow, (scope, key))
            if earlier is None:
                return None
            if earlier.request_hash != digest:
                raise Conflict(
                    "this Idempotency-Key was already used for a different request",
                    code="idempotency.conflict",
                )
            row = session.get(JobRow, earlier.job_id)
            if row is None:
                return None
            return _info(row)

    def get(self, job_id: str) -> tuple[JobInfo, JobRow] | None:
        """A job and its row (for permission checks), or None."""
        with self._store.session() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                return None
            session.expunge(row)
            return _info(row), row

    def progress(self, info: JobInfo, row: JobRow) -> JobInfo:
        """A job with where it stands: position and ETA while queued, start time while running.

        ``position`` is how many jobs are expected to be claimed before this one (see
        :func:`~fathom.store.job_schedule.estimated_position`); ``eta_seconds`` is the mean run
        time of recent jobs times (position / jobs running now + 1), or None before any job has
        finished. Neither says anything about other tenants' jobs beyond that one number.
        """
        if info.status == "running":
            return dataclasses.replace(info, started_at=row.updated_at.isoformat())
        if info.status != "queued":
            return info
        now = time.time()
        with self._store.session() as session:
            position = estimated_position(session, row, now)
            run_seconds = recent_run_seconds(session)
            running = session.scalar(
                select(func.count(JobRow.id)).where(JobRow.status == "running", JobRow.lease_until >= now)
            )
        eta = None
        if run_seconds is not None:
            eta = round(run_seconds * (position / max(1, int(running or 0)) + 1), 1)
        return dataclasses.replace(info, position=position, eta_seconds=eta)

    def claim(self, worker: str) -> ClaimedJob | None:
        """Take the next job, round-robin across tenants; None when there is none to take.

        The tenant is the one with the fewest jobs running, then the one served least recently
        (tenants at ``tenant_max_running`` are passed over); the job is that tenant's oldest one
        that is queued or whose worker's lease ran out.
        """
        now = time.time()
        with self._store.session() as session:
            queues = tenant_queues(session, now)
        cap = self.tenant_max_running
        tenants = [q.tenant for q in queues if not cap or q.running < cap][:_CLAIM_TENANTS]
        for tenant in tenants:
            with self._store.session() as session:
                candidates = session.execute(
                    select(JobRow.id, JobRow.status, JobRow.attempts, JobRow.max_attempts)
                    .where(JobRow.tenant_id == tenant, claimable(now))
                    .order_by(JobRow.created_at, JobRow.id)
                    .limit(_CLAIM_JOBS_PER_TENANT)
                ).all()
            for job_id, status, attempts, max_attempts in candidates:
                if attempts >= max_attempts:
                    self._give_up(job_id, status, now)
                    continue
                claimed = self._try_claim(job_id, status, worker, now)
                if claimed is not None:
                    self._mark_served(claimed.tenant)
                    return claimed
                break  # another worker just served this tenant: the next tenant's turn
        return None

    def _mark_served(self, tenant: str) -> None:
        """Remember that the tenant was just served, on its newest queued job.

        The claimed job carries its claim time only while it runs; the mark keeps the tenant
        behind the others in the round-robin after the job finishes. One row in its own
        transaction, so concurrent claims cannot deadlock on it; losing a mark to an error
        costs one turn of fairness, never a job.
        """
        try:
            with self._store.session() as session:
                newest = session.scalars(
                    select(JobRow.id)
                    .where(JobRow.tenant_id == tenant, JobRow.status == "queued")
                    .order_by(JobRow.created_at.desc(), JobRow.id.desc())
                    .limit(1)
                ).first()
                if newest is not None:
                    session.execute(
                        update(JobRow)
                        .where(JobRow.id == newest, JobRow.status == "queued")
                        .values(updated_at=utcnow())
                    )
        except SQLAlchemyError:
            log.warning("jobs.mark_served_failed")

    def _running_or_queued(self, job_id: str, status: str, now: float) -> Any:
        condition = (JobRow.id == job_id) & (JobRow.status == status)
        if status == "running":
            condition = condition & (JobRow.lease_until < now)
        return condition

    def _give_up(self, job_id: str, status: str, now: float) -> None:
        with self._store.session() as session:
            result = session.execute(
                update(JobRow)
                .where(self._running_or_queued(job_id, status, now))
                .values(
                    status="failed",
                    error_code="job.worker_lost",
                    reason="the worker processing this job stopped too many times",
                    lease_owner=None,
                    lease_until=None,
                    content=b"",
                    updated_at=utcnow(),
                    finished_at=utcnow(),
                )
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                _record_finished(session, job_id)

    def _try_claim(self, job_id: str, status: str, worker: str, now: float) -> ClaimedJob | None:
        with self._store.session() as session:
            result = session.execute(
                update(JobRow)
                .where(self._running_or_queued(job_id, status, now))
                .values(
                    status="running",
                    attempts=JobRow.attempts + 1,
                    lease_owner=worker,
                    lease_until=now + self.lease_seconds,
                    updated_at=utcnow(),
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None  # another worker was faster
            row = session.get(JobRow, job_id)
            assert row is not None
            return ClaimedJob(
                job_id=row.id,
                document_id=row.document_id,
                tenant=row.tenant_id,
                source=row.source,
                title=row.title,
                content=row.content,
                metadata=dict(row.metadata_ or {}),
                acl_users=tuple(row.acl_users or ()),
                acl_groups=tuple(row.acl_groups or ()),
                attempt=row.attempts,
                owner_user=row.owner_user,
                owner_groups=tuple(row.owner_groups or ()),
                owner_admin=bool(row.owner_admin),
                trace_parent=row.trace_parent,
                owner_role=row.owner_role,
                owner_key=row.owner_key,
                write_acl=(
                    (tuple(row.write_users or ()), tuple(row.write_groups or ()))
                    if row.write_users is not None or row.write_groups is not None
                    else None
                ),
            )

    def renew(self, job_id: str, worker: str) -> bool:
        """Extend this worker's lease; False when the lease was lost (the job went to another)."""
        with self._store.session() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.lease_owner == worker, JobRow.status == "running")
                .values(lease_until=time.time() + self.lease_seconds)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def finish(
        self, job_id: str, worker: str, *, error_code: str | None = None, reason: str | None = None
    ) -> None:
        """Mark a held job succeeded (no error) or failed, and drop its stored upload.

        ``updated_at`` keeps the claim time, so ``finished_at - updated_at`` is the run time.
        """
        now = utcnow()
        with self._store.session() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.lease_owner == worker, JobRow.status == "running")
                .values(
                    status="failed" if error_code else "succeeded",
                    error_code=error_code,
                    reason=reason,
                    lease_owner=None,
                    lease_until=None,
                    content=b"",
                    finished_at=now,
                )
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                _record_finished(session, job_id)

    def release(self, job_id: str, worker: str) -> None:
        """Give a held job back to the queue (a worker stopping cleanly)."""
        with self._store.session() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.lease_owner == worker, JobRow.status == "running")
                .values(status="queued", lease_owner=None, lease_until=None, attempts=JobRow.attempts - 1)
            )

    def counts(self) -> dict[str, int]:
        """Jobs per status (for metrics and readiness)."""
        with self._store.connection() as conn:
            rows = conn.execute(select(JobRow.status, func.count(JobRow.id)).group_by(JobRow.status)).all()
        return {str(status): int(n) for status, n in rows}


def _record_finished(session: Session, job_id: str) -> None:
    """Queue the job's ``job.succeeded`` or ``job.failed`` webhook event in this transaction."""
    row = session.get(JobRow, job_id)
    if row is None:  # pragma: no cover - just updated in this transaction
        return
    data = {
        "job_id": row.id,
        "document_id": row.document_id,
        "source": row.source,
        "status": row.status,
        "error_code": row.error_code,
    }
    record_event(session, row.tenant_id, f"job.{row.status}", data)


def acl_pair(acl_users: Sequence[str], acl_groups: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An ACL normalised for storage: sorted, without duplicates or blanks."""
    return (
        tuple(sorted({u.strip() for u in acl_users if u.strip()})),
        tuple(sorted({g.strip() for g in acl_groups if g.strip()})),
    )
