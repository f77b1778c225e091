"""The write path of the store's chunks and change log, and how writers are ordered.

Every change to chunks appends change-log rows (``changes``: sequence, chunk id, op) in the same
transaction. A reader that follows the log by position (the embedded backend's catch-up) must
never see a sequence number commit *after* a higher one it already passed, or it would skip it.

On PostgreSQL a sequence hands out numbers at insert time, not at commit, so concurrent writers
could commit out of order. Two kinds of writers therefore share one advisory lock:

* A store whose search index is written in the same transaction (the ``postgres`` backend: a
  :class:`~fathom.index.backend.TransactionalIndex`) takes it **shared**: such writers run and
  commit in parallel. Nothing follows the log to learn about their changes; the index rows are
  already in their transaction.
* Any other store (a backend fed by catch-up, e.g. the embedded backend on a PostgreSQL store)
  takes it **exclusive**, so its changes commit in sequence order, as catch-up needs.

Readers of the log by position use :func:`stable_head`: it takes the lock exclusively for an
instant, which waits for every writer in flight, so every change at or below the head it returns
has committed (later writers draw higher numbers). SQLite allows one writer at a time anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, text
from sqlalchemy.orm import Session

from fathom.store.schema import ChangeRow, ChunkRow

__all__ = ["head", "insert_chunks", "log_changes", "remove_chunks", "serialize_writes", "stable_head"]

# Arbitrary constant naming the PostgreSQL advisory lock that orders change-log writers.
CHANGE_LOG_LOCK = 0x66617468
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:key)")
_SHARED = text("SELECT pg_advisory_xact_lock_shared(:key)")
_HEAD = select(func.coalesce(func.max(ChangeRow.seq), 0))
_INSERT_CHUNKS = insert(ChunkRow).returning(ChunkRow.id, sort_by_parameter_order=True)
_INSERT_CHANGES = insert(ChangeRow).returning(ChangeRow.seq, sort_by_parameter_order=True)


def serialize_writes(session: Session, *, parallel: bool) -> None:
    """Take the change-log lock for this transaction: shared for ``parallel`` writers (their index
    is written in the same transaction), exclusive otherwise (see the module docstring)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_SHARED if parallel else _EXCLUSIVE, {"key": CHANGE_LOG_LOCK})


def stable_head(engine: Engine) -> int:
    """The highest sequence below which every change has committed (the head, on SQLite)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(_EXCLUSIVE, {"key": CHANGE_LOG_LOCK})
        return int(connection.execute(_HEAD).scalar_one())


def head(session: Session) -> int:
    """The change-log head this transaction sees."""
    return int(session.execute(_HEAD).scalar_one())


def insert_chunks(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert chunk rows (multi-row INSERTs, no ORM objects); their ids, in ``rows`` order."""
    if not rows:
        return []
    return [int(i) for i in session.connection().execute(_INSERT_CHUNKS, list(rows)).scalars()]


def log_changes(session: Session, tenant: str, changes: Sequence[tuple[int, str]]) -> int:
    """Append ``(chunk id, op)`` rows to the change log; the highest sequence written (0: none)."""
    if not changes:
        return 0
    params = [{"chunk_id": chunk_id, "op": op, "tenant_id": tenant} for chunk_id, op in changes]
    return max(int(s) for s in session.connection().execute(_INSERT_CHANGES, params).scalars())


def remove_chunks(session: Session, doc_id: str) -> list[int]:
    """Delete a document's chunks; returns their ids (for the change log and the index)."""
    old_ids = [int(i) for i in session.scalars(select(ChunkRow.id).where(ChunkRow.doc_id == doc_id)).all()]
    if old_ids:
        session.execute(delete(ChunkRow).where(ChunkRow.doc_id == doc_id))
    return old_ids
