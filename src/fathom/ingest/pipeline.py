"""The ingest pipeline: files -> parse -> clean -> chunk -> embed -> one transaction per document.

Documents are parsed one by one and embedded in batches across documents (the
model is fastest on full batches); each document then commits alone, so a failure
or a kill affects at most the document being written, never one half-written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from fathom.config import Settings
from fathom.domain import FileOutcome, IngestReport, TextDocument, contextual_text
from fathom.embed.base import Embedder
from fathom.errors import FathomError, IngestError
from fathom.ingest.chunk import chunk_document
from fathom.ingest.document import ParsedDocument
from fathom.ingest.parsers import parse_bytes
from fathom.store.database import ChunkDraft, Store

__all__ = ["IngestPipeline", "ProgressCallback", "iter_files"]

log = structlog.get_logger(__name__)

# Called with an event name and an amount: "files_total", "file", "chunks", "embedded".
ProgressCallback = Callable[[str, int], None]

_EMBED_BATCH_CHUNKS = 256


def iter_files(path: Path) -> Iterator[Path]:
    """Files under ``path`` (recursive, sorted, hidden entries skipped), or ``path`` itself."""
    if path.is_file():
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


@dataclass(slots=True)
class _Pending:
    source: str
    content_hash: str
    parsed: ParsedDocument
    spans: list[tuple[int, int, tuple[str, ...], int]]
    inputs: list[str]
    hashes: list[str]
    metadata: dict[str, Any]
    acl_users: Sequence[str] = ()
    acl_groups: Sequence[str] = ()
    vectors: list[np.ndarray] = field(default_factory=list)


class IngestPipeline:
    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self._store = store
        self._embedder = embedder
        self._settings = settings

    # -- entry points -------------------------------------------------------------------

    def ingest_files(
        self,
        files: Iterable[Path],
        *,
        tenant: str,
        metadata: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        after_commit: Callable[[], object] | None = None,
    ) -> IngestReport:
        """Ingest files; every file gets one outcome and no file's failure stops the rest."""
        prepared = (self._prepare_file(path, tenant, metadata or {}) for path in files)
        return self._ingest_prepared(prepared, tenant, progress, after_commit)

    def ingest_texts(
        self,
        documents: Iterable[TextDocument],
        *,
        tenant: str,
        progress: ProgressCallback | None = None,
        after_commit: Callable[[], object] | None = None,
    ) -> IngestReport:
        """Ingest in-memory documents in embedding batches, one transaction per document."""
        prepared = (
            self._prepare_bytes(
                doc.text.encode("utf-8"), doc.source, tenant, title=doc.title, metadata=dict(doc.metadata)
            )
            for doc in documents
        )
        return self._ingest_prepared(prepared, tenant, progress, after_commit)

    def _ingest_prepared(
        self,
        prepared: Iterable[tuple[FileOutcome | None, _Pending | None]],
        tenant: str,
        progress: ProgressCallback | None,
        after_commit: Callable[[], object] | None,
    ) -> IngestReport:
        report = IngestReport()
        batch: list[_Pending] = []
        for outcome, pending in prepared:
            if outcome is not None:
                report.outcomes.append(outcome)
                if progress is not None:
                    progress("file", 1)
                continue
            assert pending is not None
            batch.append(pending)
            if sum(len(p.inputs) for p in batch) >= _EMBED_BATCH_CHUNKS:
                report.outcomes.extend(self._flush(batch, tenant, progress))
                batch = []
                if after_commit is not None:
                    after_commit()
        if batch:
            report.outcomes.extend(self._flush(batch, tenant, progress))
            if after_commit is not None:
                after_commit()
        return report

    def ingest_bytes(
        self,
        data: bytes,
        *,
        source: str,
        tenant: str,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
        acl_users: Sequence[str] = (),
        acl_groups: Sequence[str] = (),
    ) -> FileOutcome:
        """Ingest one in-memory document under ``source``."""
        outcome, pending = self._prepare_bytes(data, source, tenant, title=title, metadata=metadata or {})
        if outcome is not None:
            return outcome
        assert pending is not None
        pending.acl_users, pending.acl_groups = acl_users, acl_groups
        return self._flush([pending], tenant, None)[0]

    def _prepare_bytes(
        self, data: bytes, source: str, tenant: str, *, title: str | None, metadata: dict[str, Any]
    ) -> tuple[FileOutcome | None, _Pending | None]:
        content_hash = hashlib.sha256(data).hexdigest()
        existing = self._store.find_document(tenant, source)
        if existing is not None and existing.content_hash == content_hash:
            return FileOutcome(source, "unchanged", doc_id=existing.id), None
        if len(data) > self._settings.max_file_bytes:
            return FileOutcome(
                source,
                "failed",
                error_code="ingest.too_large",
                message=f"the document is larger than the {self._settings.max_file_bytes} byte limit",
            ), None
        try:
            parsed = parse_bytes(data, source)
        except FathomError as exc:
            return FileOutcome(source, "failed", error_code=exc.code, message=exc.message), None
        if title:
            parsed.title = title
        return None, self._chunk(source, content_hash, parsed, metadata)

    # -- steps --------------------------------------------------------------------------

    def _prepare_file(
        self, path: Path, tenant: str, metadata: dict[str, Any]
    ) -> tuple[FileOutcome | None, _Pending | None]:
        source = str(path.resolve())
        try:
            data = self._read_limited(path)
        except FileNotFoundError:
            return FileOutcome(source, "failed", error_code="ingest.not_found", message="no such file"), None
        except IsADirectoryError:
            return FileOutcome(source, "skipped", message="a directory"), None
        except PermissionError:
            return FileOutcome(
                source, "failed", error_code="ingest.unreadable", message="permission denied"
            ), None
        except IngestError as exc:
            return FileOutcome(source, "failed", error_code=exc.code, message=exc.message), None
        content_hash = hashlib.sha256(data).hexdigest()
        existing = self._store.find_document(tenant, source)
        if existing is not None and existing.content_hash == content_hash:
            return FileOutcome(source, "unchanged", doc_id=existing.id), None
        try:
            parsed = parse_bytes(data, path.name)
        except FathomError as exc:
            log.info("ingest.file_failed", code=exc.code)
            return FileOutcome(source, "failed", error_code=exc.code, message=exc.message), None
        except Exception as exc:  # a parser bug must fail this file only
            log.warning("ingest.parser_crashed", error_type=type(exc).__name__)
            return FileOutcome(
                source, "failed", error_code="ingest.parser_failed", message="the file could not be parsed"
            ), None
        meta = {**metadata, "filename": path.name}
        return None, self._chunk(source, content_hash, parsed, meta)

    def _read_limited(self, path: Path) -> bytes:
        if path.stat().st_size > self._settings.max_file_bytes:
            raise IngestError(
                f"the file is larger than the {self._settings.max_file_bytes} byte limit",
                code="ingest.too_large",
            )
        return path.read_bytes()

    def _chunk(
        self, source: str, content_hash: str, parsed: ParsedDocument, metadata: dict[str, Any]
    ) -> _Pending:
        settings = self._settings
        limit = min(settings.chunk_tokens, self._embedder.max_tokens - 32)
        spans = chunk_document(
            parsed.text, parsed.blocks, self._embedder.token_spans, max(limit, 16), settings.chunk_overlap
        )
        rows: list[tuple[int, int, tuple[str, ...], int]] = []
        inputs: list[str] = []
        hashes: list[str] = []
        for span in spans:
            text = parsed.text[span.start : span.end]
            model_input = contextual_text(parsed.title, span.heading_path, text)
            rows.append((span.start, span.end, span.heading_path, span.token_count))
            inputs.append(model_input)
            hashes.append(hashlib.sha256(model_input.encode("utf-8")).hexdigest())
        return _Pending(source, content_hash, parsed, rows, inputs, hashes, {**parsed.metadata, **metadata})

    def _embed(self, batch: list[_Pending], progress: ProgressCallback | None) -> None:
        model = self._embedder.name
        all_hashes = [h for p in batch for h in p.hashes]
        known = self._store.cached_embeddings(model, all_hashes)
        missing: dict[str, str] = {}
        for pending in batch:
            for digest, text in zip(pending.hashes, pending.inputs, strict=True):
                if digest not in known:
                    missing.setdefault(digest, text)
        if missing:
            digests = list(missing)
            for start in range(0, len(digests), _EMBED_BATCH_CHUNKS):
                part = digests[start : start + _EMBED_BATCH_CHUNKS]
                vectors = self._embedder.embed_documents([missing[d] for d in part])
                known.update(zip(part, vectors, strict=True))
                if progress is not None:
                    progress("embedded", len(part))
        for pending in batch:
            pending.vectors = [known[d] for d in pending.hashes]

    def _flush(
        self, batch: list[_Pending], tenant: str, progress: ProgressCallback | None
    ) -> list[FileOutcome]:
        self._embed(batch, progress)
        outcomes: list[FileOutcome] = []
        for pending in batch:
            parsed = pending.parsed
            drafts = [
                ChunkDraft(
                    ordinal=i,
                    start=start,
                    end=end,
                    text=parsed.text[start:end],
                    heading_path=path,
                    token_count=tokens,
                    content_hash=digest,
                    embedding=vector,
                )
                for i, ((start, end, path, tokens), digest, vector) in enumerate(
                    zip(pending.spans, pending.hashes, pending.vectors, strict=True)
                )
            ]
            doc_id, replaced = self._store.put_document(
                tenant=tenant,
                source=pending.source,
                title=parsed.title,
                mime_type=parsed.mime_type,
                content_hash=pending.content_hash,
                text=parsed.text,
                metadata=pending.metadata,
                chunks=drafts,
                embedding_model=self._embedder.name,
                acl_users=pending.acl_users,
                acl_groups=pending.acl_groups,
            )
            log.info("ingest.document_committed", doc_id=doc_id, chunks=len(drafts), replaced=replaced)
            outcomes.append(
                FileOutcome(
                    pending.source,
                    "updated" if replaced else "added",
                    doc_id=doc_id,
                    chunks=len(drafts),
                    warnings=tuple(parsed.warnings),
                )
            )
            if progress is not None:
                progress("chunks", len(drafts))
                progress("file", 1)
        return outcomes
