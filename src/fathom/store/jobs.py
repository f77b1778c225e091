"""Durable ingestion jobs in the store of record.

A job row holds the upload until a worker has committed the document. Workers claim a job
with a compare-and-set update (portable across SQLite and PostgreSQL, safe between processes)
that sets a lease; a worker renews its lease while it works. A job whose lease ran out belongs
to a worker that died: the next claim retries it, or fails it after ``max_attempts``. The
document itself commits in one transaction, so a retried job finds either nothing or the whole
document (then its content hash matches and the retry finishes at once).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from fathom.domain import JobInfo, JobStatus, Principal
from fathom.errors import Conflict
from fathom.store.database import Store
from fathom.store.schema import DocumentRow, IdempotencyRow, JobRow, utcnow

__all__ = ["ClaimedJob", "JobQueue", "NewJob", "acl_pair", "request_hash"]


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

    @property
    def submitter(self) -> Principal:
        """The principal that submitted the job, as it was then: the worker writes as it."""
        return Principal(
            tenant=self.tenant, user=self.owner_user, groups=self.owner_groups, admin=self.owner_admin
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
    """Enqueue, claim, renew and finish ingestion jobs."""

    def __init__(self, store: Store, *, lease_seconds: float = 30.0, max_attempts: int = 3) -> None:
        self._store = store
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts

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
        """
        if idempotency is not None:
            found = self._replay(*idempotency)
            if found is not None:
                return found, False
        try:
            with self._store.session() as session:
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

    def claim(self, worker: str) -> ClaimedJob | None:
        """Take the oldest job that is queued or whose worker's lease ran out; None when idle."""
        now = time.time()
        with self._store.session() as session:
            candidates = session.execute(
                select(JobRow.id, JobRow.status, JobRow.attempts, JobRow.max_attempts)
                .where(
                    or_(
                        JobRow.status == "queued",
                        (JobRow.status == "running") & (JobRow.lease_until < now),
                    )
                )
                .order_by(JobRow.created_at)
                .limit(8)
            ).all()
        for job_id, status, attempts, max_attempts in candidates:
            if attempts >= max_attempts:
                self._give_up(job_id, status, now)
                continue
            claimed = self._try_claim(job_id, status, worker, now)
            if claimed is not None:
                return claimed
        return None

    def _running_or_queued(self, job_id: str, status: str, now: float) -> Any:
        condition = (JobRow.id == job_id) & (JobRow.status == status)
        if status == "running":
            condition = condition & (JobRow.lease_until < now)
        return condition

    def _give_up(self, job_id: str, status: str, now: float) -> None:
        with self._store.session() as session:
            session.execute(
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
        """Mark a held job succeeded (no error) or failed, and drop its stored upload."""
        now = utcnow()
        with self._store.session() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.lease_owner == worker, JobRow.status == "running")
                .values(
                    status="failed" if error_code else "succeeded",
                    error_code=error_code,
                    reason=reason,
                    lease_owner=None,
                    lease_until=None,
                    content=b"",
                    updated_at=now,
                    finished_at=now,
                )
            )

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


def acl_pair(acl_users: Sequence[str], acl_groups: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An ACL normalised for storage: sorted, without duplicates or blanks."""
    return (
        tuple(sorted({u.strip() for u in acl_users if u.strip()})),
        tuple(sorted({g.strip() for g in acl_groups if g.strip()})),
    )
