"""Uploads through the service: queued as durable jobs, committed later by a worker.

:meth:`fathom.Fathom.submit_document`, :meth:`~fathom.Fathom.run_job` and
:meth:`~fathom.Fathom.job` delegate here. Write permission is checked when the upload is
queued and again when the worker commits it, as the job's submitter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fathom.config import Settings
from fathom.domain import FileOutcome, JobInfo, Principal
from fathom.errors import Conflict, LimitExceeded, NotFound, PermissionDenied
from fathom.index.catchup import Indexer
from fathom.ingest.pipeline import IngestPipeline
from fathom.permissions import check_create
from fathom.store.audit import Actor, acting
from fathom.store.database import Store, check_write
from fathom.store.jobs import ClaimedJob, JobQueue, NewJob, acl_pair
from fathom.store.schema import DocumentRow
from fathom.telemetry import Telemetry

__all__ = ["Uploads"]


class Uploads:
    """Queues uploads, runs claimed jobs and shows jobs to those who may see them."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        jobs: JobQueue,
        indexer: Indexer,
        pipeline: Callable[[], IngestPipeline],
        telemetry: Telemetry | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._jobs = jobs
        self._indexer = indexer
        self._pipeline = pipeline
        self._telemetry = telemetry or Telemetry()

    def submit(
        self,
        who: Principal,
        content: bytes,
        *,
        source: str,
        title: str | None,
        metadata: Mapping[str, Any] | None,
        acl_users: Sequence[str],
        acl_groups: Sequence[str],
        idempotency: tuple[str, str, str] | None,
        write_acl: tuple[Sequence[str], Sequence[str]] | None = None,
    ) -> tuple[JobInfo, bool]:
        """Queue a document (see :meth:`fathom.Fathom.submit_document`)."""
        if len(content) > self._settings.max_upload_bytes:
            raise LimitExceeded(
                f"the document is larger than the {self._settings.max_upload_bytes} byte limit",
                code="upload.too_large",
            )
        existing = self._store.find_document(who.tenant, source)
        users, groups = acl_pair(acl_users, acl_groups)
        writers = acl_pair(*write_acl) if write_acl is not None else None
        if existing is not None:
            # The same text with the same ACLs changes nothing (the job finds it unchanged), so any
            # reader may send it again: text uploaded without a source is stored once.
            same = _same_document(existing, content, users, groups, writers)
            check_write(who, existing, changes=not same)
        else:
            check_create(who)
        job = NewJob(
            tenant=who.tenant,
            owner_user=who.user,
            owner_groups=who.groups,
            owner_admin=who.admin,
            owner_role=who.role,
            owner_key=who.key_id,
            write_acl=writers,
            source=source,
            title=title,
            content=content,
            metadata=dict(metadata or {}),
            acl_users=users,
            acl_groups=groups,
            trace_parent=self._telemetry.traceparent(),
        )
        return self._jobs.enqueue(job, idempotency=idempotency)

    def run(self, job: ClaimedJob) -> FileOutcome:
        """Ingest a claimed job's document as its submitter (see :meth:`fathom.Fathom.run_job`).

        With tracing on, its spans continue the trace of the upload request."""
        with self._telemetry.stage("ingest", parent=job.trace_parent) as stage:
            stage.set(**{"fathom.job_id": job.job_id}, attempt=job.attempt)
            outcome = self._run(job)
            stage.set(status=outcome.status, chunks=outcome.chunks, error_code=outcome.error_code)
        return outcome

    def _run(self, job: ClaimedJob) -> FileOutcome:
        # The audit log records the document's write as this job, for its submitter.
        actor = Actor(kind="job", id=job.job_id, user=job.submitter.user)
        try:
            with acting(actor):
                outcome = self._pipeline().ingest_bytes(
                    job.content,
                    source=job.source,
                    tenant=job.tenant,
                    title=job.title,
                    metadata=job.metadata,
                    acl_users=job.acl_users,
                    acl_groups=job.acl_groups,
                    doc_id=job.document_id,
                    principal=job.submitter,
                    write_acl=job.write_acl,
                )
        except (Conflict, PermissionDenied) as exc:
            return FileOutcome(job.source, "failed", error_code=exc.code, message=exc.message)
        with self._telemetry.stage("ingest.index"):
            self._indexer.catch_up()
        return outcome

    def job(self, who: Principal, job_id: str) -> JobInfo:
        """A job's state, for its submitter, an admin, or a reader of its document.

        Raises:
            NotFound: no such job, or one the principal may not see.
        """
        found = self._jobs.get(job_id)
        if found is not None:
            info, row = found
            own = who.tenant == row.tenant_id and who.user is not None and row.owner_user == who.user
            if own or who.can_read(row.tenant_id, row.acl_users or (), row.acl_groups or ()):
                return self._jobs.progress(info, row)
        raise NotFound(f"no job {job_id!r}", code="job.not_found")


def _same_document(
    doc: DocumentRow,
    content: bytes,
    users: Sequence[str],
    groups: Sequence[str],
    writers: tuple[Sequence[str], Sequence[str]] | None,
) -> bool:
    """Whether storing ``content`` with these ACLs under ``doc``'s source would change nothing
    (``writers`` None: the write ACL is kept)."""
    return (
        doc.content_hash == hashlib.sha256(content).hexdigest()
        and sorted(doc.acl_users or ()) == sorted(users)
        and sorted(doc.acl_groups or ()) == sorted(groups)
        and (
            writers is None
            or (
                sorted(doc.write_users or ()) == sorted(writers[0])
                and sorted(doc.write_groups or ()) == sorted(writers[1])
            )
        )
    )
