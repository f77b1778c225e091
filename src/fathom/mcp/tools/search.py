"""The ``search`` tool: passages with their citations, best first."""

from __future__ import annotations

from pydantic import Field

from fathom.domain import Hit
from fathom.guard.fields import Filters
from fathom.mcp.tools.base import (
    _FILTERS_DESCRIPTION,
    _MAX_QUERY_FIELD,
    CitationOut,
    ToolContext,
    _Args,
    _clip,
    _count,
    _Result,
)

__all__ = ["SearchArgs", "SearchHit", "SearchResult", "search"]


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
    ctx.searched(args.query, hits)
    return SearchResult(query=args.query, hits=[_search_hit(n, hit) for n, hit in enumerate(hits, 1)])
