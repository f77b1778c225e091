"""The ``ingest_text`` tool: store a document given as text and wait until it is searchable."""

from __future__ import annotations

import functools
import time

import anyio
import anyio.to_thread
from pydantic import Field

from fathom.domain import DocumentInfo, JobInfo, text_source
from fathom.errors import IngestError, NotFound
from fathom.guard.fields import TextMetadata
from fathom.mcp.tools.base import ToolContext, _Args, _count, _Result

__all__ = ["IngestResult", "IngestTextArgs", "ingest_text"]

# ingest_text polls its job at first often (small documents finish fast), then less.
_JOB_POLL_FIRST_SECONDS = 0.1
_JOB_POLL_MAX_SECONDS = 1.0


class IngestTextArgs(_Args):
    text: str = Field(
        min_length=1,
        description="The document's full content: Markdown, HTML or plain text (the format is "
        "detected; Markdown headings become the heading path of citations). At most the server's "
        "max_upload_bytes (20 MiB by default; over HTTP one MCP request is capped at 4 MiB).",
    )
    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="The document's identity, e.g. 'notes/2024-06-standup.md'. Ingesting the same "
        "source again replaces that document (unchanged text is skipped) if you created it, are "
        "named in its write ACL (as an editor) or are an admin; otherwise it fails with "
        "document.write_denied (as does any ingest by a reader). Default: derived from the text, "
        "so the same text is stored once.",
    )
    title: str | None = Field(
        default=None, max_length=1024, description="Title; default: the first heading or line."
    )
    metadata: TextMetadata | None = Field(
        default=None,
        description='Key/value labels that search and ask can filter on, e.g. {"team": "ops"} '
        "(at most 64; keys up to 256 characters, values up to 4096).",
    )
    acl_users: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Users who may read the document. With acl_groups, both empty (the default) "
        "means everyone in your tenant may read it.",
    )
    acl_groups: list[str] = Field(
        default_factory=list, max_length=1000, description="Groups whose members may read the document."
    )
    write_users: list[str] | None = Field(
        default=None,
        max_length=1000,
        description="Editors who may also replace, re-ACL or delete the document (besides you and "
        "admins). Leave write_users and write_groups out to keep a replaced document's write ACL; "
        "a new document then gets none.",
    )
    write_groups: list[str] | None = Field(
        default=None, max_length=1000, description="Groups whose editors may also write the document."
    )
    wait_seconds: float = Field(
        default=60.0,
        ge=0,
        le=300,
        description="How long to wait for the document to become searchable (0-300). When it is "
        "not done by then the result has status 'queued' or 'running' and the document appears "
        "shortly after. Over HTTP a key has a few waits at once; further calls answer at once.",
    )


class IngestResult(_Result):
    document_id: str = Field(description="The document's id (get_document, search results).")
    job_id: str = Field(description="The ingestion job's id (GET /v1/jobs/{job_id} on the REST API).")
    status: str = Field(description="'succeeded' (searchable now), 'queued' or 'running' (soon).")
    source: str
    title: str | None = Field(description="The stored title, once ingested and readable by you.")
    chunks: int | None = Field(description="Passages indexed, once ingested and readable by you.")

    def render(self) -> str:
        if self.status == "succeeded":
            what = _count(self.chunks, "passage") if self.chunks is not None else "done"
            return (
                f"Ingested {self.title or self.source!r} as document {self.document_id} ({what}); "
                "it is searchable now."
            )
        return (
            f"Document {self.document_id} ({self.source!r}) is {self.status} as job {self.job_id}; "
            "it becomes searchable when the job succeeds."
        )


def _submit(ctx: ToolContext, args: IngestTextArgs, source: str) -> JobInfo:
    writers = None
    if args.write_users is not None or args.write_groups is not None:
        writers = (tuple(args.write_users or ()), tuple(args.write_groups or ()))
    job, new = ctx.fathom.submit_document(
        args.text.encode("utf-8"),
        source=source,
        title=args.title,
        metadata=args.metadata,
        acl_users=args.acl_users,
        acl_groups=args.acl_groups,
        principal=ctx.principal,
        write_acl=writers,
    )
    if new:
        ctx.job_queued()
    return job


def _readable_info(ctx: ToolContext, document_id: str) -> DocumentInfo | None:
    try:
        return ctx.fathom.document(document_id, principal=ctx.principal)
    except NotFound:  # an ACL that leaves the uploader out: stored, but not for them to see
        return None


async def _wait_for(ctx: ToolContext, job: JobInfo, seconds: float) -> JobInfo:
    """The job once it finished or ``seconds`` passed.

    The wait sleeps on the event loop and takes a worker thread only for each short look at
    the job, so waiting calls never hold the threads other requests need.
    """
    deadline = time.monotonic() + seconds
    pause = _JOB_POLL_FIRST_SECONDS
    while job.status in ("queued", "running") and time.monotonic() < deadline:
        await anyio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, _JOB_POLL_MAX_SECONDS)
        look = functools.partial(ctx.fathom.job, job.job_id, principal=ctx.principal)
        job = await anyio.to_thread.run_sync(look)
    return job


async def ingest_text(ctx: ToolContext, args: IngestTextArgs) -> IngestResult:
    source = args.source or text_source(args.text.encode("utf-8"))
    job = await anyio.to_thread.run_sync(_submit, ctx, args, source)
    if args.wait_seconds > 0:
        with ctx.wait_slot() as may_wait:
            if may_wait:
                job = await _wait_for(ctx, job, args.wait_seconds)
    if job.status == "failed":
        raise IngestError(job.reason or "the document could not be ingested", code=job.error_code)
    info: DocumentInfo | None = None
    if job.status == "succeeded":
        info = await anyio.to_thread.run_sync(_readable_info, ctx, job.document_id)
    return IngestResult(
        document_id=job.document_id,
        job_id=job.job_id,
        status=job.status,
        source=source,
        title=info.title if info else None,
        chunks=info.chunks if info else None,
    )
