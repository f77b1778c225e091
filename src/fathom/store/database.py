"""The store of record: documents, chunks with embeddings, and the change log.

Every write is one transaction: a document's row, its chunks and the change-log
rows for them commit together or not at all, so a process killed at any moment
leaves no half-visible document.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, bindparam, create_engine, delete, event, func, make_url, select, text
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.orm import Session, defer, sessionmaker

from fathom import permissions
from fathom.domain import Principal
from fathom.errors import Conflict, StorageFull
from fathom.index.backend import TransactionalIndex
from fathom.index.types import ChangeBatch, IndexableChunk, IndexFilter
from fathom.index.vocabulary import document_acl_tokens, metadata_tokens
from fathom.normalize import fold_for_index
from fathom.permissions import DocumentAccess
from fathom.store import change_log
from fathom.store.audit import AuditEvent, DocumentState, append, document_written
from fathom.store.chunks import ChunkDraft, StoredChunk
from fathom.store.conversations import erase_turns_citing
from fathom.store.migrate import migrate_schema
from fathom.store.outbox import record_event
from fathom.store.replicas import ReadReplicas
from fathom.store.schema import ChangeRow, ChunkRow, DocumentAclRow, DocumentRow, utcnow
from fathom.store.space import (
    STORE_MESSAGE,
    is_read_only_refusal,
    is_storage_full,
    read_only_engine,
    storage_full,
)

__all__ = ["ChunkDraft", "Store", "StoredChunk", "check_write", "document_access"]

T = TypeVar("T")

_CHUNK_COLUMNS = (
    "SELECT c.id, c.doc_id, c.text, c.start_offset, c.end_offset, c.heading_path, c.ordinal,"
    " c.minhash, c.page, d.source, d.title"
    " FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN :ids"
)
# Chunk reads for a principal re-check its tenant, and its ACL unless it is the tenant's admin,
# in the query itself: whatever an index returned, no other chunk leaves the database.
_CHUNKS_FOR_TENANT = text(_CHUNK_COLUMNS + " AND c.tenant_id = :tenant").bindparams(
    bindparam("ids", expanding=True)
)
_CHUNKS_FOR_READER = text(
    _CHUNK_COLUMNS + " AND c.tenant_id = :tenant AND EXISTS (SELECT 1 FROM document_acl a"
    " WHERE a.doc_id = c.doc_id AND a.token IN :tokens)"
).bindparams(bindparam("ids", expanding=True), bindparam("tokens", expanding=True))


_CONNECT_TIMEOUT_SECONDS = 5
_LIBPQ_DRIVERS = {"psycopg", "psycopg2"}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL never corrupts and keeps every commit across a process crash.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Deleted rows are overwritten with zeros in the database file, not just unlinked: a
    # deleted document's text must not survive in free pages (see docs/privacy.md; the WAL
    # keeps older page images until ``fathom compact`` checkpoints it).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _indexable(
    *,
    chunk_id: int,
    doc_id: str,
    tenant: str,
    heading_path: Sequence[str] | None,
    text: str,
    embedding: bytes,
    title: str,
    source: str,
    mime_type: str,
    metadata: dict[str, Any] | None,
    acl_users: Sequence[str] | None,
    acl_groups: Sequence[str] | None,
) -> IndexableChunk:
    """What indexes need of one stored chunk and its document (the tokens from the vocabulary)."""
    return IndexableChunk(
        chunk_id=chunk_id,
        doc_id=doc_id,
        tenant_id=tenant,
        title=title,
        heading_path=tuple(heading_path or ()),
        text=fold_for_index(text),
        acl_tokens=document_acl_tokens(acl_users or (), acl_groups or ()),
        metadata_tokens=metadata_tokens(source, mime_type, metadata or {}),
        embedding=np.frombuffer(embedding, dtype=np.float32),
    )


def document_access(doc: DocumentRow) -> DocumentAccess:
    """What :mod:`fathom.permissions` needs of a stored document."""
    return DocumentAccess(
        tenant=doc.tenant_id,
        acl_users=tuple(doc.acl_users or ()),
        acl_groups=tuple(doc.acl_groups or ()),
        owner_user=doc.owner_user,
        owner_key=doc.owner_key,
        write_users=tuple(doc.write_users or ()),
        write_groups=tuple(doc.write_groups or ()),
    )


def check_write(writer: Principal, doc: DocumentRow, *, changes: bool = True) -> None:
    """Refuse to let ``writer`` replace ``doc`` (see :func:`fathom.permissions.check_write`)."""
    permissions.check_write(writer, document_access(doc), changes=changes)


class Store:
    """The store of record behind one SQLAlchemy engine (SQLite by default).

    Args:
        url: SQLAlchemy URL of the database.
        lock_dir: folder for the migration lock file (processes sharing a home).
        index_writer: a search backend kept in this database, written in the same transaction as
            every document change (the ``postgres`` backend); None for backends fed by catch-up.
        replicas: streaming replicas for the chunk reads that follow a search (``chunks_by_id``).
    """

    def __init__(
        self,
        url: str,
        *,
        lock_dir: Path | None = None,
        index_writer: TransactionalIndex | None = None,
        replicas: ReadReplicas | None = None,
    ) -> None:
        self.url = url
        self._replicas = replicas
        self._index_writer = index_writer
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            # A server that restarted leaves dead connections in the pool: test each before use
            # so the first request after an outage succeeds; and never hang on an unreachable host.
            kwargs["pool_pre_ping"] = True
            parsed = make_url(url)
            libpq = parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in _LIBPQ_DRIVERS
            if libpq and "connect_timeout" not in parsed.query:
                kwargs["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT_SECONDS}
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        database = self.engine.url.database if self.is_sqlite else None
        self._data_path = Path(database) if database and database != ":memory:" else None
        # The one place where a full disk under the store becomes StorageFull (the failed
        # statement's transaction is rolled back, so nothing partial stays).
        event.listen(self.engine, "handle_error", self._storage_full)
        if replicas is not None:
            replicas.watch(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock_dir = lock_dir
        self.read_only = False
        try:
            self.migrate()
        except StorageFull:
            # SQLite cannot even open its WAL index on a full disk; a read-only view of a
            # cleanly closed database keeps status and search working until space is freed.
            engine = read_only_engine(self._data_path) if self._data_path is not None else None
            if engine is None:
                raise
            self.engine.dispose()
            self.engine, self.read_only = engine, True
            event.listen(self.engine, "handle_error", self._storage_full)
            self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # -- lifecycle -----------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest migration (safe to call on every open)."""
        migrate_schema(self.engine, self._lock_dir, self._safe_url())

    def close(self) -> None:
        self.engine.dispose()

    def _storage_full(self, context: ExceptionContext) -> None:
        error = context.original_exception
        if is_storage_full(error, self._data_path) or (self.read_only and is_read_only_refusal(error)):
            raise storage_full("store", STORE_MESSAGE) from error

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    def _search_read(self, read: Callable[[Connection], T]) -> T:
        """A read that follows a search: where the search ran when there are replicas."""
        if self._replicas is None:
            with self.connection() as conn:
                return read(conn)
        return self._replicas.read(self.engine, read, follow=True)

    # -- documents -----------------------------------------------------------------

    def find_document(self, tenant: str, source: str) -> DocumentRow | None:
        with self.session() as session:
            return session.scalars(
                select(DocumentRow).where(DocumentRow.tenant_id == tenant, DocumentRow.source == source)
            ).one_or_none()

    def get_document(self, tenant: str, doc_id: str) -> DocumentRow | None:
        with self.session() as session:
            return session.scalars(
                select(DocumentRow).where(DocumentRow.tenant_id == tenant, DocumentRow.id == doc_id)
            ).one_or_none()

    def list_documents(self, tenant: str, source_prefix: str | None = None) -> list[tuple[DocumentRow, int]]:
        """Documents of a tenant (without loading their text) with their chunk counts."""
        with self.session() as session:
            counts = (
                select(ChunkRow.doc_id, func.count(ChunkRow.id).label("n"))
                .group_by(ChunkRow.doc_id)
                .subquery()
            )
            query = (
                select(DocumentRow, func.coalesce(counts.c.n, 0))
                .options(defer(DocumentRow.text, raiseload=True))
                .outerjoin(counts, counts.c.doc_id == DocumentRow.id)
                .where(DocumentRow.tenant_id == tenant)
                .order_by(DocumentRow.source)
            )
            if source_prefix is not None:
                query = query.where(DocumentRow.source.startswith(source_prefix, autoescape=True))
            rows = session.execute(query).all()
            return [(row[0], int(row[1])) for row in rows]

    def put_document(
        self,
        *,
        tenant: str,
        source: str,
        title: str,
        mime_type: str,
        content_hash: str,
        text: str,
        metadata: dict[str, Any],
        chunks: Sequence[ChunkDraft],
        embedding_model: str,
        acl_users: Sequence[str] = (),
        acl_groups: Sequence[str] = (),
        doc_id: str | None = None,
        writer: Principal | None = None,
        write_acl: tuple[Sequence[str], Sequence[str]] | None = None,
    ) -> tuple[str, bool]:
        """Insert or replace a document and all its chunks in one transaction.

        Args:
            doc_id: the id a new document gets (default: a fresh one); when a document with
                this source already exists under another id, nothing is written.
            writer: who writes; a new document is owned by its user (by its key when it has no
                user). An existing document is replaced only when the writer may read it and
                write it (:mod:`fathom.permissions`, checked in this transaction, with the
                document's row locked). None: the tenant's admin (CLI, embedded use), whose new
                documents have no owner.
            write_acl: the write ACL (users, groups) to set; None keeps a replaced document's
                (a new one gets an empty one: owner and admins only).

        Returns:
            The document id and whether an existing document was replaced.

        Raises:
            Conflict: the source belongs to a document the writer may not read
                (``document.source_taken``), or ``doc_id`` was given and the source belongs to
                another document (``document.conflict``).
            PermissionDenied: the writer may read the document but not replace it
                (``document.write_denied``).
        """
        with self.session() as session:
            self._serialize_writes(session)
            previous = change_log.head(session) if self._index_writer is not None else 0
            doc = session.scalars(
                select(DocumentRow)
                .where(DocumentRow.tenant_id == tenant, DocumentRow.source == source)
                .with_for_update()
            ).one_or_none()
            replaced = doc is not None
            before = DocumentState.of(doc)
            if doc is not None and writer is not None:
                check_write(writer, doc)
            elif doc is None and writer is not None:
                permissions.check_create(writer)
            old_ids: list[int] = []
            if doc is not None and doc_id is not None and doc.id != doc_id:
                raise Conflict("another document took this source meanwhile", code="document.conflict")
            now = utcnow()
            if doc is None:
                doc = DocumentRow(
                    id=doc_id or uuid.uuid4().hex,
                    tenant_id=tenant,
                    source=source,
                    owner_user=writer.user if writer is not None else None,
                    owner_key=writer.key_id if writer is not None and writer.user is None else None,
                    created_at=now,
                )
                session.add(doc)
            else:
                old_ids = change_log.remove_chunks(session, doc.id)
            doc.title = title
            doc.mime_type = mime_type
            doc.content_hash = content_hash
            doc.text = text
            doc.metadata_ = dict(metadata)
            doc.acl_users = list(acl_users)
            doc.acl_groups = list(acl_groups)
            if write_acl is not None:
                doc.write_users, doc.write_groups = sorted(set(write_acl[0])), sorted(set(write_acl[1]))
            doc.updated_at = now
            session.flush()
            self._write_acl(session, doc.id, acl_users, acl_groups)
            rows: list[dict[str, Any]] = [
                {
                    "doc_id": doc.id,
                    "tenant_id": tenant,
                    "ordinal": c.ordinal,
                    "start_offset": c.start,
                    "end_offset": c.end,
                    "text": c.text,
                    "heading_path": list(c.heading_path),
                    "token_count": c.token_count,
                    "content_hash": c.content_hash,
                    "embedding_model": embedding_model,
                    "embedding": np.asarray(c.embedding, dtype=np.float32).tobytes(),
                    "minhash": np.asarray(c.minhash, dtype=np.uint64).tobytes(),
                    "page": c.page,
                }
                for c in chunks
            ]
            new_ids = change_log.insert_chunks(session, rows)
            sequence = change_log.log_changes(
                session, tenant, [(cid, "remove") for cid in old_ids] + [(cid, "add") for cid in new_ids]
            )
            if self._index_writer is not None and sequence:
                added = [
                    _indexable(
                        chunk_id=chunk_id,
                        doc_id=doc.id,
                        tenant=tenant,
                        heading_path=draft.heading_path,
                        text=draft.text,
                        embedding=row["embedding"],
                        title=title,
                        source=source,
                        mime_type=mime_type,
                        metadata=doc.metadata_,
                        acl_users=acl_users,
                        acl_groups=acl_groups,
                    )
                    for chunk_id, draft, row in zip(new_ids, chunks, rows, strict=True)
                ]
                removed = dict.fromkeys(old_ids, tenant)
                self._index_writer.write(session.connection(), removed, added, previous, sequence)
            # Last, so the tenant's audit chain is held only while this transaction commits.
            document_written(session, doc.id, source, len(chunks), before, doc)
            return doc.id, replaced

    def page_starts(self, tenant: str, doc_ids: Iterable[str]) -> dict[str, list[int]]:
        """Text offsets where each page begins, for the paged documents among ``doc_ids``."""
        # Only the page offsets leave the database, not the whole metadata (which holds the
        # document's fingerprint): this runs on every search. The rows are found by primary
        # key and the tenant checked here: with a tenant condition in SQL, SQLite walks the
        # tenant's whole index instead (9 ms for 100 documents of a 5k-document tenant).
        with self.connection() as conn:
            rows = conn.execute(
                select(
                    DocumentRow.id, DocumentRow.tenant_id, DocumentRow.metadata_["structure"]["page_starts"]
                ).where(DocumentRow.id.in_(list(doc_ids)))
            ).all()
        return {
            doc_id: [int(v) for v in starts]
            for doc_id, owner, starts in rows
            if owner == tenant and isinstance(starts, list)
        }

    def chunk_spans(self, tenant: str, doc_id: str) -> list[tuple[int, int, tuple[str, ...]]]:
        """``(start, end, heading_path)`` of every chunk of a document, in order."""
        with self.connection() as conn:
            rows = conn.execute(
                select(ChunkRow.start_offset, ChunkRow.end_offset, ChunkRow.heading_path)
                .where(ChunkRow.tenant_id == tenant, ChunkRow.doc_id == doc_id)
                .order_by(ChunkRow.ordinal)
            ).all()
        return [(int(a), int(b), tuple(path or ())) for a, b, path in rows]

    def delete_document(self, tenant: str, doc_id: str) -> bool:
        """Delete a document and its chunks in one transaction; False when there was none."""
        with self.session() as session:
            self._serialize_writes(session)
            doc = session.scalars(
                select(DocumentRow).where(DocumentRow.tenant_id == tenant, DocumentRow.id == doc_id)
            ).one_or_none()
            if doc is None:
                return False
            previous = change_log.head(session) if self._index_writer is not None else 0
            old_ids = change_log.remove_chunks(session, doc.id)
            sequence = change_log.log_changes(session, tenant, [(cid, "remove") for cid in old_ids])
            # Conversation answers that quoted the document are erased with it.
            erase_turns_citing(session, doc.id)
            record_event(session, tenant, "document.deleted", {"document_id": doc.id, "source": doc.source})
            source = doc.source
            session.delete(doc)
            if self._index_writer is not None and sequence:
                session.flush()
                removed = dict.fromkeys(old_ids, tenant)
                self._index_writer.write(session.connection(), removed, [], previous, sequence)
            append(session, AuditEvent(tenant, "document.delete", doc_id, details={"source": source}))
            return True

    def _serialize_writes(self, session: Session) -> None:
        """Order this transaction among change-log writers (:mod:`fathom.store.change_log`): in
        parallel when the search index is written in it, one at a time otherwise."""
        change_log.serialize_writes(session, parallel=self._index_writer is not None)

    @staticmethod
    def _write_acl(session: Session, doc_id: str, users: Sequence[str], groups: Sequence[str]) -> None:
        """Replace a document's ACL tokens (the ones chunk reads for a principal check)."""
        session.execute(delete(DocumentAclRow).where(DocumentAclRow.doc_id == doc_id))
        session.add_all(
            DocumentAclRow(doc_id=doc_id, token=token) for token in document_acl_tokens(users, groups)
        )
        session.flush()

    # -- embeddings cache -----------------------------------------------------------

    def cached_embeddings(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Embeddings already computed for these chunk content hashes with this model."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self.connection() as conn:
            for i in range(0, len(unique), 500):
                part = unique[i : i + 500]
                rows = conn.execute(
                    select(ChunkRow.content_hash, ChunkRow.embedding).where(
                        ChunkRow.embedding_model == model, ChunkRow.content_hash.in_(part)
                    )
                )
                for content_hash, blob in rows:
                    found.setdefault(content_hash, np.frombuffer(blob, dtype=np.float32))
        return found

    # -- change log and index feeds -------------------------------------------------

    def last_sequence(self) -> int:
        """The highest sequence committed (with parallel writers, a lower one may still commit)."""
        with self.connection() as conn:
            return int(conn.execute(select(func.coalesce(func.max(ChangeRow.seq), 0))).scalar_one())

    def stable_sequence(self) -> int:
        """The highest sequence at or below which every change has committed; waits for the
        writers in flight (:func:`fathom.store.change_log.stable_head`)."""
        return change_log.stable_head(self.engine)

    def changes_since(self, seq: int, limit: int = 20_000, until: int | None = None) -> ChangeBatch | None:
        """The next change-log rows after ``seq`` (up to ``until``), reduced to each chunk's final state."""
        query = select(ChangeRow.seq, ChangeRow.chunk_id, ChangeRow.op, ChangeRow.tenant_id).where(
            ChangeRow.seq > seq
        )
        if until is not None:
            query = query.where(ChangeRow.seq <= until)
        with self.connection() as conn:
            rows = conn.execute(query.order_by(ChangeRow.seq).limit(limit)).all()
        if not rows:
            return None
        last_op: dict[int, str] = {}
        tenants: dict[int, str] = {}
        for _seq, chunk_id, op, tenant in rows:
            last_op[chunk_id] = op
            tenants[chunk_id] = tenant
        # Every touched chunk is removed first, then re-added if its final op is "add":
        # replaying the same rows twice therefore leaves the same index.
        return ChangeBatch(
            last_seq=int(rows[-1][0]),
            removed=tenants,
            added=frozenset(cid for cid, op in last_op.items() if op == "add"),
        )

    def indexable_chunks(self, chunk_ids: Sequence[int]) -> list[IndexableChunk]:
        """The chunks among these ids that still exist, with what indexes need."""
        out: list[IndexableChunk] = []
        ids = sorted(chunk_ids)
        with self.connection() as conn:
            for i in range(0, len(ids), 900):
                part = ids[i : i + 900]
                rows = conn.execute(
                    select(
                        ChunkRow.id,
                        ChunkRow.doc_id,
                        ChunkRow.tenant_id,
                        ChunkRow.heading_path,
                        ChunkRow.text,
                        ChunkRow.embedding,
                        DocumentRow.title,
                        DocumentRow.source,
                        DocumentRow.mime_type,
                        DocumentRow.metadata_.label("doc_metadata"),
                        DocumentRow.acl_users,
                        DocumentRow.acl_groups,
                    )
                    .join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
                    .where(ChunkRow.id.in_(part))
                ).all()
                out.extend(
                    _indexable(
                        chunk_id=r.id,
                        doc_id=r.doc_id,
                        tenant=r.tenant_id,
                        heading_path=r.heading_path,
                        text=r.text,
                        embedding=r.embedding,
                        title=r.title,
                        source=r.source,
                        mime_type=r.mime_type,
                        metadata=r.doc_metadata,
                        acl_users=r.acl_users,
                        acl_groups=r.acl_groups,
                    )
                    for r in rows
                )
        return out

    def all_chunk_ids(self) -> list[int]:
        with self.connection() as conn:
            return [int(x) for x in conn.execute(select(ChunkRow.id).order_by(ChunkRow.id)).scalars()]

    def chunks_by_id(self, chunk_ids: Sequence[int], reader: IndexFilter) -> dict[int, StoredChunk]:
        """The chunks among ``chunk_ids`` that ``reader`` may read, with their document's source
        and title (others are simply absent).

        The reader's tenant and ACL tokens are checked in the query (defence in depth: indexes
        filter first). Runs on every search, so it is plain SQL without ORM result processing (a
        third of the time for 100 hits on SQLite); ``heading_path`` arrives as JSON text on SQLite
        and already decoded on PostgreSQL.
        """
        out: dict[int, StoredChunk] = {}
        ids = list(dict.fromkeys(chunk_ids))
        params: dict[str, Any] = {"tenant": reader.tenant}
        query = _CHUNKS_FOR_TENANT
        if reader.acl_tokens is not None:
            query, params["tokens"] = _CHUNKS_FOR_READER, list(reader.acl_tokens)

        def read(conn: Connection) -> list[Any]:
            return [
                row
                for i in range(0, len(ids), 900)
                for row in conn.execute(query, {**params, "ids": ids[i : i + 900]})
            ]

        rows = self._search_read(read)
        for chunk_id, doc_id, body, start, end, path, ordinal, minhash, page, source, title in rows:
            if isinstance(path, str):
                path = json.loads(path)
            out[chunk_id] = StoredChunk(
                chunk_id=chunk_id,
                doc_id=doc_id,
                source=source,
                title=title,
                text=body,
                start=start,
                end=end,
                heading_path=tuple(path or ()),
                ordinal=ordinal,
                minhash=np.frombuffer(minhash, dtype=np.uint64) if minhash else None,
                page=page,
            )
        return out

    def embedding_models(self) -> list[str]:
        with self.connection() as conn:
            return [str(m) for m in conn.execute(select(ChunkRow.embedding_model).distinct()).scalars()]

    def chunks_needing_embedding(self, model: str) -> list[tuple[int, str, str, tuple[str, ...], str]]:
        """(chunk id, text, title, heading path, content hash) of chunks embedded with another model."""
        with self.connection() as conn:
            rows = conn.execute(
                select(
                    ChunkRow.id,
                    ChunkRow.text,
                    DocumentRow.title,
                    ChunkRow.heading_path,
                    ChunkRow.content_hash,
                )
                .join(DocumentRow, DocumentRow.id == ChunkRow.doc_id)
                .where(ChunkRow.embedding_model != model)
            ).all()
        return [(r[0], r[1], r[2], tuple(r[3] or ()), r[4]) for r in rows]

    def set_embeddings(self, model: str, vectors: dict[int, np.ndarray]) -> None:
        """Replace stored embeddings (used when the configured model changes)."""
        with self.session() as session:
            for chunk_id, vector in vectors.items():
                row = session.get(ChunkRow, chunk_id)
                if row is not None:
                    row.embedding = np.asarray(vector, dtype=np.float32).tobytes()
                    row.embedding_model = model

    def counts_for_document(self, doc_id: str) -> int:
        """How many chunks a document has."""
        with self.connection() as conn:
            query = select(func.count(ChunkRow.id)).where(ChunkRow.doc_id == doc_id)
            return int(conn.execute(query).scalar_one())

    def counts(self, tenant: str | None = None) -> tuple[int, int]:
        """(documents, chunks), for one tenant or all."""
        with self.connection() as conn:
            doc_query = select(func.count(DocumentRow.id))
            chunk_query = select(func.count(ChunkRow.id))
            if tenant is not None:
                doc_query = doc_query.where(DocumentRow.tenant_id == tenant)
                chunk_query = chunk_query.where(ChunkRow.tenant_id == tenant)
            return int(conn.execute(doc_query).scalar_one()), int(conn.execute(chunk_query).scalar_one())
