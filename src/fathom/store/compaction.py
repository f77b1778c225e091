"""Compaction of the store of record: what ``fathom compact`` does to the database.

A delete removes rows in one transaction, but their bytes can outlive it:

- SQLite (``secure_delete`` on, see :mod:`fathom.store.database`) zeroes deleted rows in the
  database file, but the write-ahead log still holds the page images written before the delete
  until a checkpoint. Compaction rebuilds the file (``VACUUM``, which also clears rows deleted
  before ``secure_delete`` was on) and checkpoints the WAL with ``TRUNCATE``, leaving it empty.
- PostgreSQL keeps deleted rows as dead tuples until ``VACUUM`` reclaims them; compaction runs
  ``VACUUM`` on the database (fathom's tables and the postgres backend's). It cannot reach WAL
  segments already written, archived WAL, replicas' copies or backups: those age out by the
  operator's own retention (docs/privacy.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from fathom.store.database import Store

__all__ = ["StoreCompaction", "compact_store"]


@dataclass(frozen=True, slots=True)
class StoreCompaction:
    """What compacting the store did."""

    dialect: str
    # SQLite: the WAL frames left after the checkpoint (0: the WAL is empty) and whether a
    # reader kept the checkpoint from completing (then run it again once readers are gone).
    wal_frames_left: int = 0
    busy: bool = False
    vacuumed: bool = False


def compact_store(store: Store) -> StoreCompaction:
    """Rebuild and checkpoint SQLite, or VACUUM PostgreSQL's tables (see the module docstring)."""
    if store.is_sqlite:
        with store.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
            conn.exec_driver_sql("VACUUM")
            busy, frames, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        return StoreCompaction("sqlite", wal_frames_left=int(frames), busy=bool(busy), vacuumed=True)
    # The whole database: fathom's tables and the postgres search backend's, in one statement.
    with store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("VACUUM"))
    return StoreCompaction(store.engine.dialect.name, vacuumed=True)
