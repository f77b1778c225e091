"""The MCP tools, defined once: ``fathom mcp`` (stdio) and ``/mcp`` (HTTP) serve the same table.

Each tool is an input model (its JSON schema is what an assistant sees), a result model (the
tool's structured output, which also renders itself as readable text) and a function over the
Python API. Tools receive a :class:`ToolContext` that says who calls them; every read goes
through :class:`~fathom.Fathom` with that principal, so tenant and ACL filtering is exactly the
REST API's (inside retrieval, before ranking).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field

from fathom.api import Fathom
from fathom.domain import Answer, Citation, DocumentInfo, Hit, JobInfo, Principal, text_source
from fathom.errors import IngestError, NotFound
from fathom.guard.fields import Filters, TextMetadata

__all__ = ["TOOLS", "Tool", "ToolContext", "tool_named"]

# Bounds of the schemas; fathom's own limits (max_query_chars, max_upload_bytes) apply inside.
_MAX_QUERY_FIELD = 100_000
_QUOTE_CHARS = 600
# ingest_text polls its job at first often (small documents finish fast), then less.
_JOB_POLL_FIRST_SECONDS = 0.1
_JOB_POLL_MAX_SECONDS = 1.0


def _nothing() -> None:
    return None


def _ignore(_answer: Answer) -> None:
    return None


@contextmanager
def _always_wait() -> Iterator[bool]:
    yield True


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who calls a tool, and the hooks of the front that serves it.

    Attributes:
        fathom: the open fathom the tools read and write.
        principal: the caller; every read is filtered to what it may read.
        job_queued: called after an ingestion job is queued (wakes the job workers).
        before_answer: called before ``ask`` answers (may raise ``LimitExceeded``).
        after_answer: called with each answer ``ask`` gives (charges answer tokens).
        key_id: the API key the caller used (None over stdio): ``ask`` records it with each
            answer, so a key without a user can rate its own answers and no other key's.
        wait_slot: entered while ``ingest_text`` waits for its job; yields whether the caller
            may wait now (the HTTP front caps concurrent waits per API key).
    """

    fathom: Fathom
    principal: Principal
    job_queued: Callable[[], None]
    before_answer: Callable[[], None] = _nothing
    after_answer: Callable[[Answer], None] = _ignore
    key_id: str | None = None
    wait_slot: Callable[[], AbstractContextManager[bool]] = _always_wait


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Result(BaseModel):
    def render(self) -> str:
        """The result as text for people and assistants that read no structured content."""
        raise NotImplementedError


# -- shared parts of results -----------------------------------------------------------------


class CitationOut(BaseModel):
    """Where a passage comes from, precisely enough to check it."""

    n: int = Field(description="Citation number; answers refer to it as [n].")
    doc_id: str = Field(description="Document id: pass it to get_document to read the document.")
    chunk_id: int = Field(description="Id of the indexed passage (chunk) the quote comes from.")
    title: str = Field(description="Document title.")
    source: str = Field(description="Where the document came from (path, URL or upload source).")
    page: int | None = Field(description="1-based page or slide, for paged formats (PDF, slides).")
    heading_path: list[str] = Field(description="Headings above the passage, outermost first.")
    quote: str = Field(description="The exact text from the document.")
    start: int = Field(description="Character offset where the quote starts in the document text.")
    end: int = Field(description="Character offset where the quote ends (exclusive).")

    @classmethod
    def of_citation(cls, citation: Citation) -> CitationOut:
        return cls(
            n=citation.n,
            doc_id=citation.doc_id,
            chunk_id=citation.chunk_id,
            title=citation.title,
            source=citation.source,
            page=citation.page,
            heading_path=list(citation.heading_path),
            quote=citation.quote,
            start=citation.start,
            end=citation.end,
        )

    def label(self) -> str:
        """``[n] Title — source, page 3, A > B (doc …, chunk …, chars a-b)``."""
        where = [self.source]
        if self.page is not None:
            where.append(f"page {self.page}")
        if self.heading_path:
            where.append(" > ".join(self.heading_path))
        return (
            f"[{self.n}] {self.title} — {', '.join(where)} "
            f"(doc_id {self.doc_id}, chunk {self.chunk_id}, chars {self.start}-{self.end})"
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _clip(text: str, limit: int = _QUOTE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# -- search ----------------------------------------------------------------------------------

_FILTERS_DESCRIPTION = (
    "Optional exact matches on document metadata, all of which must hold: 'source', 'type' "
    "(MIME type such as 'text/markdown' or 'application/pdf'), 'filename', or any metadata key "
    'given at ingest. Example: {"type": "application/pdf"}. Leave out to search everything.'
)


class SearchArgs(_Args):
    query: str = Field(
        min_length=1,
        max_length=_MAX_QUERY_FIELD,
        description="What to look for, in natural language or keywords (the server refuses queries "
        "longer than its max_query_chars setting, 2000 characters by default).",
    )
    k: int = Field(default=8, ge=1, le=50, description="How many passages to return (1-50).")
    filters: Filters | None = Field(default=None, description=_FILTERS_DESCRIPTION)


class SearchHit(CitationOut):
    score: float = Field(description="Fused relevance score; higher is better, comparable within one search.")


class SearchResult(_Result):
    query: str
    hits: list[SearchHit] = Field(description="Passages, best first; each is its own citation.")

    def render(self) -> str:
        if not self.hits:
            return f"No passages found for {self.query!r} in the documents you can read."
        lines = [f"{_count(len(self.hits), 'passage')} for {self.query!r}, best first:"]
        for hit in self.hits:
            lines += ["", hit.label(), f"    {_clip(hit.quote)}"]
        return "\n".join(lines)


def _search_hit(n: int, hit: Hit) -> SearchHit:
    return SearchHit(
        n=n,
        doc_id=hit.doc_id,
        chunk_id=hit.chunk_id,
        title=hit.title,
        source=hit.source,
        page=hit.page,
        heading_path=list(hit.heading_path),
        quote=hit.text,
        start=hit.start,
        end=hit.end,
        score=hit.score,
    )


def search(ctx: ToolContext, args: SearchArgs) -> SearchResult:
    hits = ctx.fathom.search(args.query, k=args.k, filters=args.filters, principal=ctx.principal)
    return SearchResult(query=args.query, hits=[_search_hit(n, hit) for n, hit in enumerate(hits, 1)])


# -- ask -------------------------------------------------------------------------------------


class AskArgs(_Args):
    question: str = Field(
        min_length=1,
        max_length=_MAX_QUERY_FIELD,
        description="A self-contained question (resolve 'it'/'that' from the conversation first). "
        "The server refuses questions longer than its max_query_chars setting (2000 characters "
        "by default).",
    )
    k: int | None = Field(
        default=None,
        ge=1,
        le=50,
        description="How many retrieved passages the answer may draw on (1-50; default: the "
        "server's answer_chunks setting, 6).",
    )
    filters: Filters | None = Field(default=None, description=_FILTERS_DESCRIPTION)


class AskResult(_Result):
    answer: str = Field(description="The answer; each sentence ends with [n] markers naming its citations.")
    abstained: bool = Field(
        description="True when the documents do not support an answer; then say so rather than guess."
    )
    citations: list[CitationOut] = Field(description="The quotes the [n] markers refer to.")
    answer_id: str = Field(description="Id of this answer (for feedback through the REST API).")
    model: str = Field(description="'extractive' (verbatim sentences, no LLM) or the LLM that wrote it.")
    groundedness: float | None = Field(
        description="Share of the answer supported by its citations (0-1); null when abstaining."
    )
    notes: list[str] = Field(description="What the reader should know, e.g. a fallback to extractive.")

    def render(self) -> str:
        if self.abstained:
            lines = [self.answer or "Not found in the documents you can read."]
        else:
            lines = [self.answer]
        if self.citations:
            lines += ["", "Sources:"]
            for citation in self.citations:
                lines += [citation.label(), f"    \u201c{_clip(citation.quote)}\u201d"]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def ask(ctx: ToolContext, args: AskArgs) -> AskResult:
    ctx.before_answer()
    answer = ctx.fathom.ask(args.question, k=args.k, filters=args.filters, principal=ctx.principal)
    answer_id = ctx.fathom.record_answer(answer, principal=ctx.principal, key_id=ctx.key_id)
    ctx.after_answer(answer)
    return AskResult(
        answer=answer.answer,
        abstained=answer.abstained,
        citations=[CitationOut.of_citation(c) for c in answer.citations],
        answer_id=answer_id,
        model=answer.model,
        groundedness=answer.groundedness,
        notes=list(answer.notes),
    )


# -- ingest_text -----------------------------------------------------------------------------


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
        "source again replaces that document (unchanged text is skipped) if you created it or are "
        "an admin; otherwise it fails with document.write_denied. Default: derived from the text, "
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
    job, new = ctx.fathom.submit_document(
        args.text.encode("utf-8"),
        source=source,
        title=args.title,
        metadata=args.metadata,
        acl_users=args.acl_users,
        acl_groups=args.acl_groups,
        principal=ctx.principal,
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


# -- list_documents / get_document -----------------------------------------------------------


class ListDocumentsArgs(_Args):
    source_prefix: str | None = Field(
        default=None,
        max_length=4096,
        description="Only documents whose source starts with this, e.g. '/home/me/notes/' or 'wiki/'.",
    )
    limit: int = Field(default=50, ge=1, le=500, description="How many documents to return (1-500).")
    offset: int = Field(default=0, ge=0, description="How many to skip: pass next_offset to page on.")


class DocumentSummary(BaseModel):
    doc_id: str
    source: str
    title: str
    mime_type: str = Field(description="Detected type, e.g. 'text/markdown', 'application/pdf'.")
    chunks: int = Field(description="Indexed passages.")
    metadata: dict[str, Any]
    updated_at: str = Field(description="When the document last changed (ISO 8601, UTC).")

    @classmethod
    def of(cls, doc: DocumentInfo) -> DocumentSummary:
        return cls(
            doc_id=doc.doc_id,
            source=doc.source,
            title=doc.title,
            mime_type=doc.mime_type,
            chunks=doc.chunks,
            metadata=doc.metadata,
            updated_at=doc.updated_at,
        )


class ListDocumentsResult(_Result):
    documents: list[DocumentSummary] = Field(description="Documents you may read, by source.")
    total: int = Field(description="How many documents match in all.")
    next_offset: int | None = Field(description="Offset of the next page; null on the last page.")

    def render(self) -> str:
        if not self.documents:
            return "No documents." if not self.total else f"No documents on this page ({self.total} in all)."
        lines = [f"{len(self.documents)} of {_count(self.total, 'document')}:"]
        lines += [
            f"- {d.title} — {d.source} ({d.mime_type}, {_count(d.chunks, 'passage')}, doc_id {d.doc_id})"
            for d in self.documents
        ]
        if self.next_offset is not None:
            lines.append(f"More: call again with offset {self.next_offset}.")
        return "\n".join(lines)


def list_documents(ctx: ToolContext, args: ListDocumentsArgs) -> ListDocumentsResult:
    documents = ctx.fathom.documents(principal=ctx.principal)
    if args.source_prefix:
        documents = [d for d in documents if d.source.startswith(args.source_prefix)]
    page = documents[args.offset : args.offset + args.limit]
    after = args.offset + len(page)
    return ListDocumentsResult(
        documents=[DocumentSummary.of(d) for d in page],
        total=len(documents),
        next_offset=after if after < len(documents) else None,
    )


class GetDocumentArgs(_Args):
    document_id: str = Field(
        min_length=1, max_length=128, description="A doc_id from search, ask or list_documents."
    )
    offset: int = Field(
        default=0,
        ge=0,
        description="Character offset to start reading at. To read around a citation, pass a little "
        "less than its start; to read on, pass next_offset.",
    )
    max_chars: int = Field(
        default=8000, ge=1, le=50_000, description="How many characters of text to return (1-50000)."
    )


class GetDocumentResult(_Result):
    document: DocumentSummary
    acl: dict[str, list[str]] = Field(
        description="Who may read it: users and groups (both empty: the tenant)."
    )
    text: str = Field(description="The document text from offset; citation offsets index into this text.")
    offset: int
    total_chars: int = Field(description="Length of the whole document text.")
    next_offset: int | None = Field(description="Where the next part starts; null at the end.")

    def render(self) -> str:
        doc = self.document
        end = self.offset + len(self.text)
        header = (
            f"{doc.title} — {doc.source} ({doc.mime_type}, doc_id {doc.doc_id}); "
            f"characters {self.offset}-{end} of {self.total_chars}"
        )
        if self.next_offset is not None:
            return f"{header}\n\n{self.text}\n\n[more: call again with offset {self.next_offset}]"
        return f"{header}\n\n{self.text}"


def get_document(ctx: ToolContext, args: GetDocumentArgs) -> GetDocumentResult:
    info = ctx.fathom.document(args.document_id, principal=ctx.principal)
    text = ctx.fathom.document_text(args.document_id, principal=ctx.principal)
    offset = min(args.offset, len(text))
    end = min(len(text), offset + args.max_chars)
    return GetDocumentResult(
        document=DocumentSummary.of(info),
        acl={"users": list(info.acl_users), "groups": list(info.acl_groups)},
        text=text[offset:end],
        offset=offset,
        total_chars=len(text),
        next_offset=end if end < len(text) else None,
    )


# -- the table -------------------------------------------------------------------------------

ArgsT = TypeVar("ArgsT", bound=_Args)
ResultT = TypeVar("ResultT", bound=_Result)


@dataclass(frozen=True, slots=True)
class Tool(Generic[ArgsT, ResultT]):
    """One MCP tool: what an assistant is told about it, and what runs when it is called."""

    name: str
    title: str
    description: str
    args: type[ArgsT]
    result: type[ResultT]
    run: Callable[[ToolContext, ArgsT], Awaitable[ResultT]]
    read_only: bool = True
    idempotent: bool = True


def _in_thread(
    function: Callable[[ToolContext, ArgsT], ResultT],
) -> Callable[[ToolContext, ArgsT], Awaitable[ResultT]]:
    """A blocking tool as a coroutine that runs it on a worker thread."""

    async def run(ctx: ToolContext, args: ArgsT) -> ResultT:
        return await anyio.to_thread.run_sync(function, ctx, args)

    return run


TOOLS: tuple[Tool[Any, Any], ...] = (
    Tool(
        name="search",
        title="Search documents",
        description=(
            "Find passages in the user's own documents (notes, manuals, wikis, PDFs ... ingested "
            "into fathom) by meaning and by keywords. Use it to locate information, to see what "
            "the documents say about a topic, or to gather evidence before answering in your own "
            "words. Returns up to k passages, best first, each with its citation: doc_id, title, "
            "source, page, heading path, chunk id, the exact passage text and its character "
            "offsets. Cite what you use by title and source; read more around a passage with "
            "get_document. For a direct answer with quoted sentences, use ask instead. Only "
            "documents the caller may read are searched."
        ),
        args=SearchArgs,
        result=SearchResult,
        run=_in_thread(search),
    ),
    Tool(
        name="ask",
        title="Answer from documents",
        description=(
            "Answer a question from the user's documents with cited, verified sentences: each "
            "answer sentence ends with [n] markers, and citations[n] gives the exact quote, doc_id, "
            "title, source, page and heading path. When the documents do not support an answer, "
            "abstained is true: tell the user the documents do not say, do not guess. Without an "
            "LLM configured on the server the answer is sentences quoted verbatim. Prefer search "
            "when you want to read and combine passages yourself."
        ),
        args=AskArgs,
        result=AskResult,
        run=_in_thread(ask),
    ),
    Tool(
        name="ingest_text",
        title="Add a document",
        description=(
            "Store a document given as text (Markdown, HTML or plain text) so that search and ask "
            "find it, e.g. meeting notes or a page the user asks you to remember. Giving the same "
            "source again replaces that document. Waits until the document is searchable (up to "
            "wait_seconds) and returns its document_id. Files on disk are better added with the "
            "`fathom ingest` command or the REST upload. acl_users/acl_groups restrict who may "
            "read it; by default everyone in the tenant may."
        ),
        args=IngestTextArgs,
        result=IngestResult,
        run=ingest_text,
        read_only=False,
    ),
    Tool(
        name="list_documents",
        title="List documents",
        description=(
            "List the documents the caller may read (doc_id, title, source, type, passages, "
            "metadata), sorted by source, a page at a time. Use it to see what is there or to find "
            "a doc_id by its source; to find documents about something, use search."
        ),
        args=ListDocumentsArgs,
        result=ListDocumentsResult,
        run=_in_thread(list_documents),
    ),
    Tool(
        name="get_document",
        title="Read a document",
        description=(
            "Read a document's details and text by doc_id (from search, ask or list_documents), "
            "max_chars at a time from offset. Citation offsets (start, end) index into this text, "
            "so pass an offset a little before a citation's start to read its context. Returns "
            "next_offset while there is more."
        ),
        args=GetDocumentArgs,
        result=GetDocumentResult,
        run=_in_thread(get_document),
    ),
)

_BY_NAME = {tool.name: tool for tool in TOOLS}


def tool_named(name: str) -> Tool[Any, Any] | None:
    """The tool called ``name``, or None."""
    return _BY_NAME.get(name)
