"""What every MCP tool shares: the caller's context, the base models and citation output."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from fathom.domain import Answer, Citation, Hit, Principal

if TYPE_CHECKING:
    # Only a type here: `fathom mcp` lists its tools before the store and indexes are imported.
    from fathom.api import Fathom

__all__ = ["CitationOut", "ToolContext"]

# Bounds of the schemas; fathom's own limits (max_query_chars, max_upload_bytes) apply inside.
_MAX_QUERY_FIELD = 100_000
_QUOTE_CHARS = 600
_FILTERS_DESCRIPTION = (
    "Optional exact matches on document metadata, all of which must hold: 'source', 'type' "
    "(MIME type such as 'text/markdown' or 'application/pdf'), 'filename', or any metadata key "
    'given at ingest. Example: {"type": "application/pdf"}. Leave out to search everything.'
)


def _nothing() -> None:
    return None


def _ignore(_answer: Answer) -> None:
    return None


def _searched(_query: str, _hits: Sequence[Hit]) -> None:
    return None


def _answered(_question: str, _answer: Answer, _answer_id: str) -> None:
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
        searched: called with the query and hits of each ``search`` (the HTTP front audits it).
        answered: called with the question, answer and answer id of each ``ask`` (audited too).
    """

    fathom: Fathom
    principal: Principal
    job_queued: Callable[[], None]
    before_answer: Callable[[], None] = _nothing
    after_answer: Callable[[Answer], None] = _ignore
    key_id: str | None = None
    wait_slot: Callable[[], AbstractContextManager[bool]] = _always_wait
    searched: Callable[[str, Sequence[Hit]], None] = _searched
    answered: Callable[[str, Answer, str], None] = _answered


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
