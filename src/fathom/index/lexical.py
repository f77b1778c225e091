"""BM25 over one tenant's chunks with tantivy (English stemming), filtered inside the query.

The embedded backend keeps one such index per tenant (:mod:`fathom.index.embedded`), so BM25's
document frequencies and lengths are the tenant's own: another tenant's data never changes a
score.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import tantivy

from fathom.domain import contextual_text
from fathom.index.position import read_position, write_position
from fathom.index.types import IndexableChunk, IndexFilter, ScoredId
from fathom.normalize import fold_for_index

__all__ = ["TantivyIndex", "analyze"]

_WORDS = re.compile(r"\w+", re.UNICODE)
_WRITER_HEAP = 64_000_000
# Bumped whenever what goes into the index changes; an index of another layout (version,
# or the context_in_body choice) is cleared on open and rebuilt from the change log.
_LAYOUT_VERSION = 2


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("chunk_id", stored=True, indexed=True, fast=True)
    builder.add_text_field("doc_id", tokenizer_name="raw")
    builder.add_text_field("tenant", tokenizer_name="raw")
    builder.add_text_field("acl", tokenizer_name="raw")
    builder.add_text_field("meta", tokenizer_name="raw")
    builder.add_text_field("title", tokenizer_name="en_stem")
    builder.add_text_field("heading", tokenizer_name="en_stem")
    builder.add_text_field("body", tokenizer_name="en_stem")
    return builder.build()


class TantivyIndex:
    """A lexical index stored in ``directory`` (one tenant's, in the embedded backend)."""

    name = "lexical"

    def __init__(
        self,
        directory: Path,
        *,
        title_boost: float = 0.0,
        heading_boost: float = 0.0,
        context_in_body: bool = True,
    ) -> None:
        self._directory = directory
        self._position_file = directory.with_suffix(".position")
        self._version_file = directory.with_suffix(".version")
        # The body holds the title and heading path too (one BM25 field ranks better than
        # short separate fields whose length normalisation over-rewards a title match);
        # a positive boost adds a title or heading match on top.
        self._boosts = {"body": 1.0}
        self._boosts.update(
            {name: b for name, b in (("title", title_boost), ("heading", heading_boost)) if b}
        )
        self._lock = threading.Lock()
        self._context_in_body = context_in_body
        self._layout = f"{_LAYOUT_VERSION}-{'context' if context_in_body else 'text'}"
        if self._read_layout() != self._layout:
            self._reset()
        self._open()

    def _read_layout(self) -> str | None:
        try:
            return self._version_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None

    def _reset(self) -> None:
        """Drop the index files and position; catch-up then rebuilds from the change log."""
        shutil.rmtree(self._directory, ignore_errors=True)
        self._position_file.unlink(missing_ok=True)
        self._directory.parent.mkdir(parents=True, exist_ok=True)
        self._version_file.write_text(self._layout, encoding="utf-8")

    def _open(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        self._schema = _schema()
        self._index = tantivy.Index(self._schema, path=str(self._directory))

    def refresh(self) -> None:
        """See commits other processes made."""
        self._index.reload()

    def applied_sequence(self) -> int:
        return read_position(self._position_file)

    def apply(self, removed: Sequence[int], added: Sequence[IndexableChunk], sequence: int) -> None:
        with self._lock:

            def change(writer: tantivy.IndexWriter) -> None:
                for chunk_id in removed:
                    writer.delete_documents_by_term("chunk_id", chunk_id)
                for chunk in added:
                    writer.add_document(self._document(chunk))

            self._commit(change)
            self._index.reload()
            # Recorded only after the commit is durable; a crash in between replays the
            # same changes, which is harmless because apply() deletes before it adds.
            write_position(self._position_file, sequence)

    def _commit(self, change: Callable[[tantivy.IndexWriter], None]) -> None:
        """Make ``change`` with a fresh writer and commit it, or roll it back whole."""
        writer = self._index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        # A process killed mid-commit leaves files no commit references; tantivy would
        # later try to create one of them again and fail, so sweep them first.
        writer.garbage_collect_files()
        try:
            change(writer)
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()

    def _document(self, chunk: IndexableChunk) -> tantivy.Document:
        document = tantivy.Document()
        document.add_integer("chunk_id", chunk.chunk_id)
        document.add_text("doc_id", chunk.doc_id)
        document.add_text("tenant", chunk.tenant_id)
        for token in chunk.acl_tokens:
            document.add_text("acl", token)
        for token in chunk.metadata_tokens:
            document.add_text("meta", token)
        document.add_text("title", chunk.title)
        document.add_text("heading", " / ".join(chunk.heading_path))
        body = (
            fold_for_index(contextual_text(chunk.title, chunk.heading_path, chunk.text))
            if self._context_in_body
            else chunk.text
        )
        document.add_text("body", body)
        return document

    def rewrite(self, chunks: Sequence[IndexableChunk]) -> None:
        """Replace the whole index with ``chunks`` in one commit, leaving no deleted document behind.

        tantivy keeps a deleted document (its stored fields and its terms) in its segment until
        the segment is merged. Deleting everything and adding the live chunks back drops every old
        segment at the commit; collecting garbage then unlinks their files (``fathom compact``).
        """
        with self._lock:

            def replace(writer: tantivy.IndexWriter) -> None:
                writer.delete_all_documents()
                for chunk in chunks:
                    writer.add_document(self._document(chunk))

            self._commit(replace)
            writer = self._index.writer(heap_size=_WRITER_HEAP, num_threads=1)
            writer.garbage_collect_files()
            writer.wait_merging_threads()
            self._index.reload()

    def clear(self) -> None:
        with self._lock:
            self._reset()
            self._open()

    def size(self) -> int:
        return int(self._index.searcher().num_docs)

    def chunk_ids(self) -> set[int]:
        searcher = self._index.searcher()
        total = int(searcher.num_docs)
        if total == 0:
            return set()
        hits = searcher.search(tantivy.Query.all_query(), total, count=False).hits
        return _ids(searcher.fast_field_values("chunk_id", [addr for _, addr in hits]))

    def _filter_clauses(self, where: IndexFilter) -> list[tuple[tantivy.Occur, tantivy.Query]]:
        clauses = [(tantivy.Occur.Must, tantivy.Query.term_query(self._schema, "tenant", where.tenant))]
        if where.acl_tokens is not None:
            clauses.append(
                (
                    tantivy.Occur.Must,
                    tantivy.Query.term_set_query(self._schema, "acl", list(where.acl_tokens)),
                )
            )
        clauses.extend(
            (tantivy.Occur.Must, tantivy.Query.term_query(self._schema, "meta", term))
            for term in where.metadata
        )
        return clauses

    def searcher(self) -> tantivy.Searcher:
        """A point-in-time view: searches and filters given the same one see the same chunks."""
        return self._index.searcher()

    def search(
        self, query: str, limit: int, where: IndexFilter, searcher: tantivy.Searcher | None = None
    ) -> list[ScoredId]:
        """BM25 search among chunks that pass ``where``, best first (in ``searcher`` if given)."""
        # Only words reach the query parser: no field syntax, operators or ranges from users.
        words = [w.lower() for w in _WORDS.findall(query)]
        if not words:
            return []
        parsed = self._index.parse_query(" ".join(words), list(self._boosts), field_boosts=self._boosts)
        searcher = searcher or self._index.searcher()
        if not where.restricts_within_tenant:
            # The index holds one tenant, so an admin's filter passes every chunk. Same hits and
            # scores (the filter scores 0), but a bare disjunction lets tantivy skip blocks that
            # cannot reach the top: half the time at 200k chunks.
            combined = parsed
        else:
            filters = tantivy.Query.const_score_query(
                tantivy.Query.boolean_query(self._filter_clauses(where)), 0.0
            )
            combined = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, parsed), (tantivy.Occur.Must, filters)]
            )
        hits = searcher.search(combined, limit, count=False).hits
        if not hits:
            return []
        ids = searcher.fast_field_values("chunk_id", [addr for _, addr in hits])
        return [
            (int(chunk_id), float(score))
            for (score, _), chunk_id in zip(hits, ids, strict=True)
            if isinstance(chunk_id, int)
        ]

    def document_frequencies(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(chunks in the index, chunks containing each analysed term in body or headings)."""
        searcher = self._index.searcher()
        frequencies = {
            term: max(int(searcher.doc_freq("body", term)), int(searcher.doc_freq("heading", term)))
            for term in terms
        }
        return int(searcher.num_docs), frequencies

    def allowed(self, where: IndexFilter, searcher: tantivy.Searcher | None = None) -> _TantivyAllowed:
        """The chunks that pass the filter, resolved lazily against one searcher (one snapshot)."""
        searcher = searcher or self._index.searcher()
        return _TantivyAllowed(searcher, self._schema, self._filter_clauses(where), where)


class _TantivyAllowed:
    """:class:`~fathom.index.dense.AllowedChunks` over one tantivy searcher (one snapshot)."""

    def __init__(
        self,
        searcher: tantivy.Searcher,
        schema: tantivy.Schema,
        clauses: list[tuple[tantivy.Occur, tantivy.Query]],
        where: IndexFilter,
    ) -> None:
        self._searcher = searcher
        self._schema = schema
        self._clauses = clauses
        self._where = where
        self._ids: list[int] | None = None
        self._count: int | None = None

    def upper_bound(self) -> int:
        # Each clause must match, so the rarest one bounds the result. Document
        # frequencies come from the term dictionary (they still count deleted chunks,
        # which only makes the bound looser).
        searcher, where = self._searcher, self._where
        bounds = [int(searcher.num_docs), int(searcher.doc_freq("tenant", where.tenant))]
        if where.acl_tokens is not None:
            bounds.append(sum(int(searcher.doc_freq("acl", token)) for token in where.acl_tokens))
        bounds.extend(int(searcher.doc_freq("meta", term)) for term in where.metadata)
        return min(bounds)

    def count(self) -> int:
        if self._count is None:
            query = tantivy.Query.boolean_query(self._clauses)
            self._count = _count(self._searcher.search(query, 1, count=True))
        return self._count

    def ids(self) -> list[int]:
        if self._ids is None:
            query = tantivy.Query.boolean_query(self._clauses)
            total = self.count()
            hits = self._searcher.search(query, total, count=False).hits if total else []
            addresses = [addr for _, addr in hits]
            self._ids = sorted(_ids(self._searcher.fast_field_values("chunk_id", addresses)))
        return self._ids

    def keep(self, chunk_ids: Sequence[int]) -> set[int]:
        if not chunk_ids:
            return set()
        wanted = tantivy.Query.term_set_query(self._schema, "chunk_id", list(chunk_ids))
        query = tantivy.Query.boolean_query([(tantivy.Occur.Must, wanted), *self._clauses])
        hits = self._searcher.search(query, len(chunk_ids), count=False).hits
        return _ids(self._searcher.fast_field_values("chunk_id", [addr for _, addr in hits]))


def _ids(values: Sequence[object]) -> set[int]:
    return {v for v in values if isinstance(v, int)}


def _count(result: object) -> int:
    """The match count of a search run with ``count=True`` (absent from the type stubs)."""
    return int(cast(Any, result).count)


_ANALYZER = (
    tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    .filter(tantivy.Filter.remove_long(40))
    .filter(tantivy.Filter.lowercase())
    .filter(tantivy.Filter.stemmer("english"))
    .build()
)


def analyze(text: str) -> list[str]:
    """The terms tantivy's ``en_stem`` tokenizer makes of ``text`` (lowercased English stems)."""
    return [str(token) for token in _ANALYZER.analyze(text)]
