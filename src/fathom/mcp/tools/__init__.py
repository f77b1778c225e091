"""The MCP tools, defined once: ``fathom mcp`` (stdio) and ``/mcp`` (HTTP) serve the same table.

Each tool is an input model (its JSON schema is what an assistant sees), a result model (the
tool's structured output, which also renders itself as readable text) and a function over the
Python API. Tools receive a :class:`ToolContext` that says who calls them; every read goes
through :class:`~fathom.Fathom` with that principal, so tenant and ACL filtering is exactly the
REST API's (inside retrieval, before ranking).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread

from fathom.mcp.tools.ask import AskArgs, AskResult, ask
from fathom.mcp.tools.base import CitationOut, ToolContext, _Args, _Result
from fathom.mcp.tools.documents import (
    GetDocumentArgs,
    GetDocumentResult,
    ListDocumentsArgs,
    ListDocumentsResult,
    get_document,
    list_documents,
)
from fathom.mcp.tools.ingest import IngestResult, IngestTextArgs, ingest_text
from fathom.mcp.tools.search import SearchArgs, SearchResult, search

__all__ = ["TOOLS", "CitationOut", "Tool", "ToolContext", "tool_named"]

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
