"""The Python API. Every front (CLI, and later HTTP, MCP, web) is a thin layer over it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import structlog

from fathom.answer.extractive import ExtractiveAnswerer
from fathom.config import Settings, load_settings
from fathom.domain import (
    Answer,
    DocumentInfo,
    FileOutcome,
    Hit,
    IngestReport,
    Principal,
    StoreStatus,
    TextDocument,
    contextual_text,
)
from fathom.embed.base import Embedder, create_embedder
from fathom.errors import ConfigError, InvalidQuery, NotFound
from fathom.index.base import IndexFilter
from fathom.index.catchup import IndexSet, Progress
from fathom.index.dense import UsearchIndex
from fathom.index.lexical import TantivyIndex, analyze
from fathom.ingest.pipeline import IngestPipeline, ProgressCallback, iter_files
from fathom.logs import configure_logging
from fathom.rerank.base import create_reranker
from fathom.retrieve.hybrid import HybridRetriever
from fathom.store.database import Store

__all__ = ["Fathom"]

log = structlog.get_logger(__name__)


class Fathom:
    """An embedded fathom: a store of record and its indexes under one home folder.

    Args:
        home: data folder; default ``$FATHOM_HOME`` or ``~/.local/share/fathom``.
        settings: a complete settings object (``home`` and overrides are then ignored).
        embedder: an already-loaded embedder to share between instances (tests, servers),
            or an embedder setting such as ``"hash:256"``.
        **overrides: any setting by name, e.g. ``chunk_tokens=200``.

    The embedding model loads on first use, so status and delete stay fast.
    """

    def __init__(
        self,
        home: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | str | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(embedder, str):
            overrides["embedder"], embedder = embedder, None
        self.settings = settings or load_settings(home, **overrides)
        configure_logging(self.settings.log_level, json_lines=self.settings.log_json)
        self.home = self.settings.home
        self.home.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.settings.resolved_database_url, lock_dir=self.home)
        index_dir = self.settings.index_dir
        self.indexes = IndexSet(
            self.store,
            TantivyIndex(
                index_dir / "lexical",
                title_boost=self.settings.title_boost,
                heading_boost=self.settings.heading_boost,
                context_in_body=self.settings.lexical_context,
            ),
            UsearchIndex(index_dir / "dense.usearch", exact_below=self.settings.exact_search_below),
            lock_path=index_dir / "catchup.lock",
        )
        self._embedder = embedder
        self._retriever: HybridRetriever | None = None
        self._answerer: ExtractiveAnswerer | None = None
        try:
            self.indexes.catch_up()
        except ConfigError as exc:
            # E.g. the embedder changed dimension: stay openable so `reindex` can repair it;
            # ingest and search raise the same clear error until then.
            log.warning("index.catch_up_failed", code=exc.code)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = create_embedder(
                self.settings.embedder,
                device=self.settings.device,
                batch_size=self.settings.embed_batch_size,
                query_precision=self.settings.query_precision,
            )
        return self._embedder

    @property
    def _hybrid(self) -> HybridRetriever:
        if self._retriever is None:
            reranker = (
                create_reranker(self.settings.reranker, device=self.settings.device)
                if self.settings.reranker
                else None
            )
            self._retriever = HybridRetriever(self.indexes, self.embedder, self.settings, reranker)
        return self._retriever

    def close(self) -> None:
        if self._retriever is not None:
            self._retriever.close()
        self.store.close()

    def __enter__(self) -> Fathom:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _principal(self, principal: Principal | None) -> Principal:
        return principal or Principal(tenant=self.settings.tenant, admin=True)

    # -- writing --------------------------------------------------------------------------

    def ingest(
        self,
        paths: Iterable[str | Path],
        *,
        metadata: Mapping[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Ingest files and folders (recursively). Unchanged files are skipped by content hash.

        Returns a report with one outcome per file; failures never stop the batch.
        """
        files: list[Path] = []
        missing: list[FileOutcome] = []
        for raw in paths:
            path = Path(raw).expanduser()
            if not path.exists():
                missing.append(
                    FileOutcome(
                        str(path.resolve()),
                        "failed",
                        error_code="ingest.not_found",
                        message="no such file or folder",
                    )
                )
                continue
            files.extend(iter_files(path))
        return self._ingest_files(files, metadata=metadata, progress=progress, missing=missing)

    def _ingest_files(
        self,
        files: list[Path],
        *,
        metadata: Mapping[str, Any] | None,
        progress: ProgressCallback | None,
        missing: list[FileOutcome] | None = None,
    ) -> IngestReport:
        missing = missing or []
        if progress is not None:
            progress("files_total", len(files) + len(missing))
            for _ in missing:
                progress("file", 1)
        report = self._pipeline().ingest_files(
            files,
            tenant=self.settings.tenant,
            metadata=dict(metadata or {}),
            progress=progress,
            after_commit=self.indexes.catch_up,
        )
        report.outcomes[:0] = missing
        return report

    def ingest_text(
        self,
        text: str,
        *,
        source: str,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> FileOutcome:
        """Ingest a document given as text (format detected from content, e.g. Markdown)."""
        outcome = self._pipeline().ingest_bytes(
            text.encode("utf-8"),
            source=source,
            tenant=self.settings.tenant,
            title=title,
            metadata=dict(metadata or {}),
        )
        self.indexes.catch_up()
        return outcome

    def ingest_texts(
        self, documents: Iterable[TextDocument], *, progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Ingest many documents given as text, embedded in batches (unchanged ones are skipped)."""
        return self._pipeline().ingest_texts(
            documents, tenant=self.settings.tenant, progress=progress, after_commit=self.indexes.catch_up
        )

    def delete(self, source_or_id: str) -> str:
        """Delete a document by its source (a path is resolved) or its id; returns the doc id.

        Raises:
            NotFound: no such document.
        """
        tenant = self.settings.tenant
        doc = self.store.get_document(tenant, source_or_id) or self.store.find_document(tenant, source_or_id)
        if doc is None and not source_or_id.startswith(("http://", "https://")):
            doc = self.store.find_document(tenant, str(Path(source_or_id).expanduser().resolve()))
        if doc is None or not self.store.delete_document(tenant, doc.id):
            raise NotFound(f"no document {source_or_id!r}", code="document.not_found")
        self.indexes.catch_up()
        return doc.id

    def sync(self, directory: str | Path, *, progress: ProgressCallback | None = None) -> IngestReport:
        """Make the store mirror a folder: add new files, update changed ones, delete removed ones."""
        root = Path(directory).expanduser().resolve()
        if not root.is_dir():
            raise NotFound(f"no folder {str(directory)!r}", code="sync.not_a_folder")
        files = list(iter_files(root))
        report = self._ingest_files(files, metadata=None, progress=progress)
        present = {str(path.resolve()) for path in files}
        prefix = str(root) + os.sep
        for doc, _chunks in self.store.list_documents(self.settings.tenant, source_prefix=prefix):
            if doc.source not in present:
                self.store.delete_document(self.settings.tenant, doc.id)
                report.outcomes.append(FileOutcome(doc.source, "deleted", doc_id=doc.id))
        self.indexes.catch_up()
        return report

    def reindex(self, progress: Progress | None = None) -> None:
        """Rebuild every index from the store of record (re-embedding if the model changed)."""
        stale = self.store.chunks_needing_embedding(self.embedder.name)
        if stale:
            vectors = self.embedder.embed_documents(
                [contextual_text(title, path, text) for _id, text, title, path, _hash in stale]
            )
            self.store.set_embeddings(
                self.embedder.name, {row[0]: v for row, v in zip(stale, vectors, strict=True)}
            )
        self.indexes.rebuild(progress)

    def _pipeline(self) -> IngestPipeline:
        return IngestPipeline(self.store, self.embedder, self.settings)

    # -- reading --------------------------------------------------------------------------

    def _filter(self, principal: Principal, filters: Mapping[str, str] | None) -> IndexFilter:
        terms = tuple(f"{key}={value}" for key, value in sorted((filters or {}).items()))
        return IndexFilter(
            tenant=principal.tenant,
            acl_tokens=None if principal.admin else tuple(principal.acl_tokens()),
            metadata=terms,
        )

    def _check_query(self, query: str) -> str:
        query = query.strip()
        if not query:
            raise InvalidQuery("the query is empty", code="query.empty")
        if len(query) > self.settings.max_query_chars:
            raise InvalidQuery(
                f"the query is longer than {self.settings.max_query_chars} characters", code="query.too_long"
            )
        return query

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        filters: Mapping[str, str] | None = None,
        principal: Principal | None = None,
    ) -> list[Hit]:
        """Hybrid search: the ``k`` best chunks the principal may read, best first.

        ``filters`` match document metadata exactly (``source``, ``type``, ``filename`` and
        any metadata given at ingest).
        """
        query = self._check_query(query)
        if k < 1:
            raise InvalidQuery("k must be at least 1", code="query.invalid_k")
        self.indexes.catch_up()
        where = self._filter(self._principal(principal), filters)
        trace = self._hybrid.retrieve(query, where, k)
        return self._hybrid.hits(trace, k)

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Mapping[str, str] | None = None,
        principal: Principal | None = None,
    ) -> Answer:
        """Answer from the documents with cited verbatim sentences, or abstain."""
        question = self._check_query(question)
        limit = k or self.settings.answer_chunks
        self.indexes.catch_up()
        where = self._filter(self._principal(principal), filters)
        trace = self._hybrid.retrieve(question, where, limit)
        hits = self._hybrid.hits(trace, limit)
        if self._answerer is None:
            self._answerer = ExtractiveAnswerer(
                self.embedder,
                analyze,
                self.indexes.lexical.document_frequencies,
                max_sentences=self.settings.answer_sentences,
                min_support=self.settings.min_support,
            )
        return self._answerer.answer(question, trace.query_vector, hits)

    def documents(self) -> list[DocumentInfo]:
        """Every document of the tenant, by source."""
        return [
            DocumentInfo(
                doc_id=doc.id,
                source=doc.source,
                title=doc.title,
                mime_type=doc.mime_type,
                content_hash=doc.content_hash,
                chunks=chunks,
                metadata=dict(doc.metadata_ or {}),
                created_at=doc.created_at.isoformat(),
                updated_at=doc.updated_at.isoformat(),
            )
            for doc, chunks in self.store.list_documents(self.settings.tenant)
        ]

    def document_text(self, doc_id: str) -> str:
        """The extracted text of a document: the text every offset and quote refers to."""
        doc = self.store.get_document(self.settings.tenant, doc_id)
        if doc is None:
            raise NotFound(f"no document {doc_id!r}", code="document.not_found")
        return doc.text

    def status(self) -> StoreStatus:
        """Counts, index positions and disk use of this home."""
        documents, chunks = self.store.counts()
        disk = sum(p.stat().st_size for p in self.home.rglob("*") if p.is_file())
        return StoreStatus(
            home=str(self.home),
            database=self.store.engine.url.render_as_string(hide_password=True),
            documents=documents,
            chunks=chunks,
            last_sequence=self.store.last_sequence(),
            index_positions={index.name: index.applied_sequence() for index in self.indexes.indexes},
            index_chunks={index.name: index.size() for index in self.indexes.indexes},
            disk_bytes=disk,
            embedder=self.settings.embedder,
        )
