"""The ``list_documents`` and ``get_document`` tools."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from fathom.domain import DocumentInfo
from fathom.mcp.tools.base import ToolContext, _Args, _count, _Result

__all__ = [
    "DocumentSummary",
    "GetDocumentArgs",
    "GetDocumentResult",
    "ListDocumentsArgs",
    "ListDocumentsResult",
    "get_document",
    "list_documents",
]


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
