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
from fathom.domain import (
    FileOutcome,
    FileStatus,
    IngestReport,
    Principal,
    TextDocument,
    contextual_text,
    page_at,
)
from fathom.embed.base import Embedder
from fathom.errors import FathomError, IngestError
from fathom.ingest.archive import ArchiveLimits
from fathom.ingest.chunk import chunk_document
from fathom.ingest.document import ParsedDocument
from fathom.ingest.fingerprint import PERMUTATIONS, fingerprint
from fathom.ingest.ocr import OcrOptions
from fathom.ingest.parsers import ParseOptions
from fathom.ingest.sandbox import ParseJob, ParseLimits, ParserPool
from fathom.normalize import fold_for_index
from fathom.store.database import ChunkDraft, Store
from fathom.telemetry import Telemetry

__all__ = [
    "FileKey",
    "SKIPPED_CODES",
    "IngestPipeline",
    "PendingDocument",
    "ProgressCallback",
    "attach_vectors",
    "chunk_parsed",
    "failed_outcome",
    "iter_files",
    "parse_limits",
    "parse_options",
]

log = structlog.get_logger(__name__)

# Called with an event name and an amount: "files_total", "file", "chunks", "embedded", and
# "chunks_total" / "embeddings_total" (added to those totals as documents are chunked).
ProgressCallback = Callable[[str, int], None]

EMBED_BATCH_CHUNKS = 256


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
class PendingDocument:
    """A parsed and chunked document waiting for its embeddings and its commit."""

    source: str
    content_hash: str
    parsed: ParsedDocument
    spans: list[tuple[int, int, tuple[str, ...], int]]
    inputs: list[str]
    hashes: list[str]
    metadata: dict[str, Any]
    path: Path | None = None
    acl_users: Sequence[str] = ()
    acl_groups: Sequence[str] = ()
    doc_id: str | None = None
    # The uploader; None: the tenant's admin (CLI, embedded use).
    writer: Principal | None = None
    # The write ACL (users, groups) to set; None: keep the document's.
    write_acl: tuple[Sequence[str], Sequence[str]] | None = None
    vectors: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Fingerprint:
    """A stored document as near-duplicate detection needs it: where it is, its MinHash, its ACL."""

    source: str
    minhash: np.ndarray
    acl_users: Sequence[str]
    acl_groups: Sequence[str]


@dataclass(frozen=True, slots=True)
class FileKey:
    """A file read and change-detected by :meth:`IngestPipeline.read_file`."""

    path: Path
    source: str
    content_hash: str


def parse_options(settings: Settings) -> ParseOptions:
    """The parser options a settings object asks for."""
    return ParseOptions(
        json_text_fields=tuple(settings.json_text_fields),
        json_title_field=settings.json_title_field,
        archive=ArchiveLimits(
            max_entries=settings.archive_max_entries,
            max_bytes=settings.archive_max_bytes,
            max_ratio=settings.archive_max_ratio,
        ),
        ocr=OcrOptions(
            mode=settings.ocr,
            command=settings.ocr_command,
            language=settings.ocr_language,
            dpi=settings.ocr_dpi,
            max_pages=settings.ocr_max_pages,
        ),
    )


def parse_limits(settings: Settings) -> ParseLimits:
    """The per-file parser limits a settings object asks for."""
    return ParseLimits(
        cpu_seconds=settings.parser_cpu_seconds,
        wall_seconds=settings.parser_timeout_seconds,
        memory_bytes=settings.parser_memory_mb * 1024 * 1024,
    )


def chunk_parsed(
    parsed: ParsedDocument,
    source: str,
    content_hash: str,
    metadata: dict[str, Any],
    embedder: Embedder,
    settings: Settings,
    *,
    path: Path | None = None,
) -> PendingDocument:
    """Chunk a parsed document in ``embedder``'s tokens; the model inputs and their hashes.

    The one chunking rule of every ingest (in process, or in a cluster task): the same
    document gives the same chunks, offsets and model inputs wherever it runs.
    """
    limit = min(settings.chunk_tokens, embedder.max_tokens - 32)
    structure = parsed.metadata.get("structure") or {}
    spans = chunk_document(
        parsed.text,
        parsed.blocks,
        embedder.token_spans,
        max(limit, 16),
        settings.chunk_overlap,
        breaks=structure.get("page_starts", ()),
    )
    rows: list[tuple[int, int, tuple[str, ...], int]] = []
    inputs: list[str] = []
    hashes: list[str] = []
    for span in spans:
        text = parsed.text[span.start : span.end]
        model_input = fold_for_index(contextual_text(parsed.title, span.heading_path, text))
        rows.append((span.start, span.end, span.heading_path, span.token_count))
        inputs.append(model_input)
        hashes.append(hashlib.sha256(model_input.encode("utf-8")).hexdigest())
    return PendingDocument(
        source, content_hash, parsed, rows, inputs, hashes, {**parsed.metadata, **metadata}, path
    )


# Files that are not documents fathom reads (images, archives, programs, empty files): a folder
# holding them is ingested without failing, each one reported as skipped with its reason.
SKIPPED_CODES = frozenset({"ingest.unsupported_format", "ingest.binary"})


def failed_outcome(source: str, error: FathomError, *, skip_unsupported: bool = False) -> FileOutcome:
    """The outcome of a file that failed with ``error`` (``no_text`` when it holds no text;
    ``skipped`` for a file that is not a document, when ``skip_unsupported``)."""
    status: FileStatus = "no_text" if error.code == "ingest.no_text" else "failed"
    if skip_unsupported and error.code in SKIPPED_CODES:
        status = "skipped"
    return FileOutcome(source, status, error_code=error.code, message=error.message)


class _Batch:
    """Parsed documents waiting for one embedding batch, and the report they end up in."""

    def __init__(
        self,
        flush: Callable[[list[PendingDocument], str, ProgressCallback | None], list[FileOutcome]],
        tenant: str,
        progress: ProgressCallback | None,
        after_commit: Callable[[], object] | None,
    ) -> None:
        self.report = IngestReport()
        self._pending: list[PendingDocument] = []
        self._flush_batch = flush
        self._tenant = tenant
        self._progress = progress
        self._after_commit = after_commit

    def done(self, outcome: FileOutcome) -> None:
        """Record a document that needs no embedding (failed, unchanged, skipped)."""
        self.report.outcomes.append(outcome)
        if self._progress is not None:
            self._progress("file", 1)

    def add(self, pending: PendingDocument) -> None:
        """Queue a parsed document; embed and commit the batch once it is full."""
        self._pending.append(pending)
        if self._progress is not None:
            self._progress("chunks_total", len(pending.inputs))
        if sum(len(p.inputs) for p in self._pending) >= EMBED_BATCH_CHUNKS:
            self.flush()

    def flush(self) -> None:
        """Embed and commit what is queued (one transaction per document)."""
        if self._pending:
            self.report.outcomes.extend(self._flush_batch(self._pending, self._tenant, self._progress))
            self._pending = []
            if self._after_commit is not None:
                self._after_commit()


class IngestPipeline:
    """Parses in a :class:`ParserPool` while the caller's thread chunks, embeds and commits."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        settings: Settings,
        parsers: ParserPool,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._settings = settings
        self._parsers = parsers
        self._telemetry = telemetry or Telemetry()
        self._fingerprints: dict[str, _Fingerprint] | None = None

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
        """Ingest files; every file gets one outcome and no file's failure stops the rest.

        Files are read and parsed by the worker pool while earlier ones are embedded. Files
        that are not documents (images, archives, binaries, empty files) are ``skipped``, with
        the reason; a file upload of the same (:meth:`ingest_bytes`) fails instead.
        """
        batch = self._batch(tenant, progress, after_commit)
        early: list[FileOutcome] = []  # filled by the dispatch thread, drained here

        def jobs() -> Iterator[ParseJob]:
            for path in files:
                outcome, job = self.read_file(path, tenant)
                if outcome is not None:
                    early.append(outcome)
                elif job is not None:
                    yield job

        def drain() -> None:
            while early:
                batch.done(early.pop(0))

        for result in self._parsers.map(jobs()):
            drain()
            key: FileKey = result.key
            if result.error is not None:
                log.info("ingest.file_failed", code=result.error.code)
                batch.done(failed_outcome(key.source, result.error, skip_unsupported=True))
                continue
            assert result.parsed is not None
            meta = {**(metadata or {}), "filename": key.path.name}
            batch.add(self._chunk(key.source, key.content_hash, result.parsed, meta, path=key.path))
        batch.flush()
        drain()
        return batch.report

    def ingest_texts(
        self,
        documents: Iterable[TextDocument],
        *,
        tenant: str,
        progress: ProgressCallback | None = None,
        after_commit: Callable[[], object] | None = None,
    ) -> IngestReport:
        """Ingest in-memory documents in embedding batches, one transaction per document."""
        batch = self._batch(tenant, progress, after_commit)
        for doc in documents:
            outcome, pending = self._prepare_bytes(
                doc.text.encode("utf-8"), doc.source, tenant, title=doc.title, metadata=dict(doc.metadata)
            )
            if outcome is not None:
                batch.done(outcome)
            else:
                assert pending is not None
                batch.add(pending)
        batch.flush()
        return batch.report

    def _batch(
        self, tenant: str, progress: ProgressCallback | None, after_commit: Callable[[], object] | None
    ) -> _Batch:
        return _Batch(self._flush, tenant, progress, after_commit)

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
        name: str | None = None,
        doc_id: str | None = None,
        principal: Principal | None = None,
        write_acl: tuple[Sequence[str], Sequence[str]] | None = None,
    ) -> FileOutcome:
        """Ingest one in-memory document under ``source`` (as ``doc_id`` when it is new;
        ``name`` hints at its type). A document whose content and ACL are unchanged is left
        as it is.

        ``principal`` is the uploader (None: the tenant's admin): it owns a new document, must
        be allowed to replace an existing one, and near-duplicates are looked for only among
        the documents it may read. ``write_acl`` (users, groups) replaces the document's write
        ACL (None keeps it).

        Raises:
            Conflict: the source belongs to a document the uploader may not read, or ``doc_id``
                was given and the source belongs to another document.
            PermissionDenied: the uploader may read the document at ``source`` but not replace it.
        """
        outcome, pending = self._prepare_bytes(
            data,
            source,
            tenant,
            title=title,
            metadata=metadata or {},
            name=name,
            acl_users=acl_users,
            acl_groups=acl_groups,
            write_acl=write_acl,
        )
        if outcome is not None:
            return outcome
        assert pending is not None
        pending.acl_users, pending.acl_groups = acl_users, acl_groups
        pending.doc_id = doc_id
        pending.writer = principal
        pending.write_acl = write_acl
        return self._flush([pending], tenant, None)[0]

    def _prepare_bytes(
        self,
        data: bytes,
        source: str,
        tenant: str,
        *,
        title: str | None,
        metadata: dict[str, Any],
        name: str | None = None,
        acl_users: Sequence[str] = (),
        acl_groups: Sequence[str] = (),
        write_acl: tuple[Sequence[str], Sequence[str]] | None = None,
    ) -> tuple[FileOutcome | None, PendingDocument | None]:
        """Parse one in-memory document in the worker pool, or say why it needs no work."""
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in source):
            return FileOutcome(
                source.replace("\x00", "\\0"),
                "failed",
                error_code="ingest.invalid_source",
                message="the source name contains NUL or control characters",
            ), None
        content_hash = hashlib.sha256(data).hexdigest()
        existing = self._store.find_document(tenant, source)
        if (
            existing is not None
            and existing.content_hash == content_hash
            and sorted(existing.acl_users or ()) == sorted(acl_users)
            and sorted(existing.acl_groups or ()) == sorted(acl_groups)
            and (
                write_acl is None
                or (
                    sorted(existing.write_users or ()) == sorted(set(write_acl[0]))
                    and sorted(existing.write_groups or ()) == sorted(set(write_acl[1]))
                )
            )
        ):
            return FileOutcome(source, "unchanged", doc_id=existing.id), None
        if len(data) > self._settings.max_file_bytes:
            return FileOutcome(
                source,
                "failed",
                error_code="ingest.too_large",
                message=f"the document is larger than the {self._settings.max_file_bytes} byte limit",
            ), None
        try:
            with self._telemetry.stage("ingest.parse", bytes=len(data)):
                parsed = self._parsers.parse(data, name or source)
        except FathomError as exc:
            return failed_outcome(source, exc), None
        if title:
            parsed.title = title
        return None, self._chunk(source, content_hash, parsed, metadata)

    # -- steps --------------------------------------------------------------------------

    def read_file(self, path: Path, tenant: str) -> tuple[FileOutcome | None, ParseJob | None]:
        """Read and change-detect one file: its outcome when it needs no parsing (unchanged,
        unreadable, too large), else the parse job (its key a :class:`FileKey`)."""
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
        except OSError:
            return FileOutcome(
                source, "failed", error_code="ingest.unreadable", message="the file could not be read"
            ), None
        if not data.strip():  # no parser needed to tell
            return FileOutcome(
                source, "skipped", error_code="ingest.empty", message="the file is empty"
            ), None
        content_hash = hashlib.sha256(data).hexdigest()
        existing = self._store.find_document(tenant, source)
        if existing is not None and existing.content_hash == content_hash:
            return FileOutcome(source, "unchanged", doc_id=existing.id), None
        return None, ParseJob(FileKey(path, source, content_hash), data, path.name)

    def _read_limited(self, path: Path) -> bytes:
        if path.stat().st_size > self._settings.max_file_bytes:
            raise IngestError(
                f"the file is larger than the {self._settings.max_file_bytes} byte limit",
                code="ingest.too_large",
            )
        return path.read_bytes()

    def _chunk(
        self,
        source: str,
        content_hash: str,
        parsed: ParsedDocument,
        metadata: dict[str, Any],
        *,
        path: Path | None = None,
    ) -> PendingDocument:
        with self._telemetry.stage("ingest.chunk") as stage:
            pending = chunk_parsed(
                parsed, source, content_hash, metadata, self._embedder, self._settings, path=path
            )
            stage.set(chunks=len(pending.spans))
        return pending

    def _embed(self, batch: list[PendingDocument], progress: ProgressCallback | None) -> None:
        with self._telemetry.stage("ingest.embed", documents=len(batch)):
            self._embed_batch(batch, progress)

    def _embed_batch(self, batch: list[PendingDocument], progress: ProgressCallback | None) -> None:
        known, missing = self.embedding_plan(batch)
        if progress is not None:
            progress("embeddings_total", len(missing))
        if missing:
            digests = list(missing)
            for start in range(0, len(digests), EMBED_BATCH_CHUNKS):
                part = digests[start : start + EMBED_BATCH_CHUNKS]
                vectors = self._embedder.embed_documents([missing[d] for d in part])
                known.update(zip(part, vectors, strict=True))
                if progress is not None:
                    progress("embedded", len(part))
        attach_vectors(batch, known)

    def embedding_plan(self, batch: list[PendingDocument]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """The vectors the store already holds for ``batch``'s chunks (by content hash), and
        the model inputs still to embed (hash -> input, each distinct input once)."""
        all_hashes = [h for p in batch for h in p.hashes]
        known = self._store.cached_embeddings(self._embedder.name, all_hashes)
        missing: dict[str, str] = {}
        for pending in batch:
            for digest, text in zip(pending.hashes, pending.inputs, strict=True):
                if digest not in known:
                    missing.setdefault(digest, text)
        return known, missing

    def _flush(
        self, batch: list[PendingDocument], tenant: str, progress: ProgressCallback | None
    ) -> list[FileOutcome]:
        self._embed(batch, progress)
        return self.commit(batch, tenant, progress)

    def commit(
        self, batch: list[PendingDocument], tenant: str, progress: ProgressCallback | None
    ) -> list[FileOutcome]:
        """Commit embedded documents, one transaction each (a document is never half-written)."""
        outcomes: list[FileOutcome] = []
        for pending in batch:
            parsed = pending.parsed
            if pending.path is not None and not pending.path.exists():
                # Deleted while it was parsed or embedded: storing it now would resurrect it.
                outcomes.append(
                    FileOutcome(
                        pending.source,
                        "failed",
                        error_code="ingest.source_deleted",
                        message="the file was deleted while it was being ingested; nothing was stored",
                    )
                )
                if progress is not None:
                    progress("file", 1)
                continue
            warnings = [*parsed.warnings, *self._duplicates(tenant, pending)]
            page_starts = (parsed.metadata.get("structure") or {}).get("page_starts") or []
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
                    minhash=fingerprint(parsed.text[start:end]),
                    page=page_at(page_starts, start) if page_starts else None,
                )
                for i, ((start, end, path, tokens), digest, vector) in enumerate(
                    zip(pending.spans, pending.hashes, pending.vectors, strict=True)
                )
            ]
            with self._telemetry.stage("ingest.commit", chunks=len(drafts)):
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
                    doc_id=pending.doc_id,
                    writer=pending.writer,
                    write_acl=pending.write_acl,
                )
            log.info("ingest.document_committed", doc_id=doc_id, chunks=len(drafts), replaced=replaced)
            outcomes.append(
                FileOutcome(
                    pending.source,
                    "updated" if replaced else "added",
                    doc_id=doc_id,
                    chunks=len(drafts),
                    warnings=tuple(warnings),
                )
            )
            if self._fingerprints is not None:
                self._fingerprints[doc_id] = _Fingerprint(
                    pending.source, _minhash(pending.metadata), pending.acl_users, pending.acl_groups
                )
            if progress is not None:
                progress("chunks", len(drafts))
                progress("file", 1)
        return outcomes

    def _duplicates(self, tenant: str, pending: PendingDocument) -> list[str]:
        """Warn about stored documents with the same or nearly the same text; link the nearest.

        Both documents are kept (each source keeps its provenance); search results collapse
        their repeated passages (:mod:`fathom.retrieve.dedupe`). Only documents the uploader
        may read are compared: otherwise an upload of guessed text would learn the id and
        source of a document hidden from it.
        """
        threshold = self._settings.near_duplicate_threshold
        mark = fingerprint(pending.parsed.text)
        pending.metadata["fingerprint"] = {"minhash": mark.tobytes().hex()}
        if threshold <= 0:
            return []
        if self._fingerprints is None:
            self._fingerprints = {
                doc.id: _Fingerprint(
                    doc.source, _minhash(doc.metadata_ or {}), doc.acl_users or (), doc.acl_groups or ()
                )
                for doc, _count in self._store.list_documents(tenant)
            }
        reader = pending.writer
        candidates = [
            (doc_id, stored)
            for doc_id, stored in self._fingerprints.items()
            if stored.source != pending.source
            and (reader is None or reader.can_read(tenant, stored.acl_users, stored.acl_groups))
        ]
        if not candidates:
            return []
        matrix = np.stack([stored.minhash for _id, stored in candidates])
        scores = (matrix == mark[None, :]).mean(axis=1)
        best = int(np.argmax(scores))
        if scores[best] < threshold:
            return []
        doc_id, nearest = candidates[best]
        pending.metadata["near_duplicate_of"] = doc_id
        return [f"near-duplicate of {nearest.source} (estimated similarity {scores[best]:.2f})"]


def attach_vectors(batch: list[PendingDocument], vectors: dict[str, np.ndarray]) -> None:
    """Give each document of ``batch`` its chunks' vectors (``vectors`` by content hash)."""
    for pending in batch:
        pending.vectors = [vectors[d] for d in pending.hashes]


def _minhash(metadata: dict[str, Any]) -> np.ndarray:
    """The fingerprint stored in a document's metadata, or one that matches nothing."""
    stored = metadata.get("fingerprint")
    if isinstance(stored, dict) and isinstance(stored.get("minhash"), str):
        try:
            return np.frombuffer(bytes.fromhex(stored["minhash"]), dtype=np.uint64).copy()
        except ValueError:
            pass
    return np.zeros(PERMUTATIONS, dtype=np.uint64)
