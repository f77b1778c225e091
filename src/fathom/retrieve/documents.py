"""Reading documents for a principal: details, listings, and passages in context.

Every read checks the principal's tenant and ACL first; a document it may not read does not
exist for it (``NotFound``, a 404 over HTTP).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fathom.domain import DocumentInfo, Passage, Principal, Section, page_at
from fathom.errors import InvalidQuery, NotFound
from fathom.store.database import Store
from fathom.store.schema import DocumentRow

__all__ = ["DocumentReader"]


class DocumentReader:
    """Documents and passages of the store of record, as one principal may see them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def section(self, principal: Principal, doc_id: str, start: int, end: int | None = None) -> Section:
        """The section around ``[start, end)`` of a document: its heading path and full span.

        Lets an answerer expand a small retrieved chunk to its parent section: every
        consecutive chunk under the same heading path as the chunk holding ``start``.

        Raises:
            NotFound: no such document, or the offsets lie outside its chunks.
        """
        doc = self.readable(principal, doc_id)
        tenant = doc.tenant_id
        spans = self.store.chunk_spans(tenant, doc_id)
        index = next((i for i, (a, b, _p) in enumerate(spans) if a <= start < b), None)
        if index is None:
            raise NotFound(f"no passage at {start} in document {doc_id!r}", code="document.not_found")
        path = spans[index][2]
        first = last = index
        while first > 0 and spans[first - 1][2] == path:
            first -= 1
        while last + 1 < len(spans) and spans[last + 1][2] == path:
            last += 1
        span_start, span_end = spans[first][0], max(spans[last][1], end or 0)
        pages = self.store.page_starts(tenant, [doc_id])
        return Section(
            doc_id=doc_id,
            source=doc.source,
            title=doc.title,
            heading_path=path,
            start=span_start,
            end=span_end,
            text=doc.text[span_start:span_end],
            page=_page(pages, doc_id, span_start) if doc_id in pages else None,
        )

    def passage(
        self, principal: Principal, doc_id: str, start: int, end: int, *, neighbours: int = 1
    ) -> Passage:
        """The quote at ``[start, end)`` of a document in context, for people checking a citation.

        The window is every chunk the quote touches plus ``neighbours`` chunks on each side, with
        the title, heading path and page of the chunk that holds the quote's start.

        Raises:
            NotFound: no such document, one the principal may not read, offsets outside its chunks,
                or an empty range (``end`` not after ``start``: code ``passage.invalid_range``; a
                range addresses no passage, so it is "not found" rather than a malformed request).
            InvalidQuery: ``start`` or ``neighbours`` is negative.
        """
        doc = self.readable(principal, doc_id)  # first: an unreadable document is a 404, whatever else
        if start < 0:
            raise InvalidQuery("start must be 0 or more", code="passage.invalid_range")
        if end <= start:
            raise NotFound("no passage: end must be greater than start", code="passage.invalid_range")
        if neighbours < 0:
            raise InvalidQuery("neighbours must be 0 or more", code="passage.invalid_range")
        spans = self.store.chunk_spans(doc.tenant_id, doc.id)
        index = next((i for i, (a, b, _p) in enumerate(spans) if a <= start < b), None)
        if index is None:
            raise NotFound(f"no passage at {start} in document {doc_id!r}", code="passage.not_found")
        last = index
        while last + 1 < len(spans) and spans[last][1] < end:
            last += 1
        first = max(0, index - neighbours)
        last = min(len(spans) - 1, last + neighbours)
        window_start = spans[first][0]
        window_end = max(b for _a, b, _p in spans[first : last + 1])
        pages = self.store.page_starts(doc.tenant_id, [doc.id])
        return Passage(
            doc_id=doc.id,
            source=doc.source,
            title=doc.title,
            heading_path=spans[index][2],
            page=_page(pages, doc.id, start) if doc.id in pages else None,
            start=window_start,
            end=window_end,
            text=doc.text[window_start:window_end],
            quote_start=start,
            quote_end=min(end, window_end),
            more_before=window_start > 0,
            more_after=window_end < len(doc.text),
        )

    def documents(self, principal: Principal) -> list[DocumentInfo]:
        """Every document of the principal's tenant that it may read, by source."""
        who = principal
        readable = [
            (doc, chunks)
            for doc, chunks in self.store.list_documents(who.tenant)
            if who.can_read(doc.tenant_id, doc.acl_users or (), doc.acl_groups or ())
        ]
        ids = {doc.id for doc, _chunks in readable}
        return [_document_info(doc, chunks, ids.__contains__) for doc, chunks in readable]

    def document(self, principal: Principal, doc_id: str) -> DocumentInfo:
        """One document's details, without its text.

        Raises:
            NotFound: no such document, or one the principal may not read.
        """
        doc = self.readable(principal, doc_id)
        chunks = self.store.counts_for_document(doc.id)
        return _document_info(doc, chunks, lambda other: self._may_read(principal, other))

    def _may_read(self, principal: Principal, doc_id: str) -> bool:
        try:
            self.readable(principal, doc_id)
        except NotFound:
            return False
        return True

    def readable(self, principal: Principal, doc_id: str) -> DocumentRow:
        """The document, when ``principal`` may read it.

        Raises:
            NotFound: no such document in the principal's tenant, or one it may not read.
        """
        who = principal
        doc = self.store.get_document(who.tenant, doc_id)
        if doc is None or not who.can_read(doc.tenant_id, doc.acl_users or (), doc.acl_groups or ()):
            raise NotFound(f"no document {doc_id!r}", code="document.not_found")
        return doc


def _document_info(doc: DocumentRow, chunks: int, readable: Callable[[str], bool]) -> DocumentInfo:
    """A document's details for a reader; ``readable`` says which other documents it may read.

    The ``near_duplicate_of`` link is shown only when the reader may read the document it names:
    the id of a document hidden from the reader is never revealed.
    """
    metadata = dict(doc.metadata_ or {})
    linked = metadata.get("near_duplicate_of")
    if linked is not None and not (isinstance(linked, str) and readable(linked)):
        del metadata["near_duplicate_of"]
    return DocumentInfo(
        doc_id=doc.id,
        source=doc.source,
        title=doc.title,
        mime_type=doc.mime_type,
        content_hash=doc.content_hash,
        chunks=chunks,
        metadata=metadata,
        created_at=doc.created_at.isoformat(),
        updated_at=doc.updated_at.isoformat(),
        acl_users=tuple(doc.acl_users or ()),
        acl_groups=tuple(doc.acl_groups or ()),
        owner=doc.owner_user or (f"key:{doc.owner_key}" if doc.owner_key else None),
        write_users=tuple(doc.write_users or ()),
        write_groups=tuple(doc.write_groups or ()),
    )


def _page(pages: Mapping[str, list[int]], doc_id: str, offset: int) -> int:
    """The 1-based page holding ``offset``, from a document's page start offsets."""
    return page_at(pages[doc_id], offset)
