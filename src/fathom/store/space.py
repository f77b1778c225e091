"""Recognising a full disk, wherever the error comes from, as one :class:`~fathom.errors.StorageFull`.

A full disk shows up in many disguises: ``OSError(ENOSPC)`` or ``EDQUOT`` from Python's own
file writes, SQLite's ``SQLITE_FULL`` ("database or disk is full", wrapped by SQLAlchemy),
PostgreSQL's SQLSTATE ``53100`` (``disk_full``), and the index engines' messages ("No space
left on device (os error 28)"). Some engines lose the cause on the way (tantivy's writer
thread dies with "An index writer was killed ... io::Error most likely"); such a generic I/O
failure counts as a full disk only when the filesystem it wrote to has less than
:data:`LOW_SPACE_BYTES` free.

The store maps its errors in one SQLAlchemy ``handle_error`` hook; index catch-up maps its own
with :func:`storage_errors`. Either way a write fails whole (SQLite rolls the transaction
back; an index keeps its last recorded position and replays the change log later), so the
error can honestly say that nothing partial was kept.

On a disk so full that SQLite cannot create its WAL index (``-shm``, 32 KiB), even a read
fails to open the database. :func:`read_only_engine` then opens it ``immutable`` and
read-only, which needs no file at all; it does so only for a database that was closed
cleanly (no ``-wal`` with frames in it), where no other process can be writing (it could not
have opened the database either) and the main file holds every commit.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

import structlog
from sqlalchemy import Engine, create_engine

from fathom.diskspace import (
    INDEX_MESSAGE,
    LOW_SPACE_BYTES,
    STORE_MESSAGE,
    chain,
    is_storage_full,
    storage_errors,
    storage_full,
)

__all__ = [
    "INDEX_MESSAGE",
    "LOW_SPACE_BYTES",
    "STORE_MESSAGE",
    "is_read_only_refusal",
    "is_storage_full",
    "read_only_engine",
    "storage_errors",
    "storage_full",
]

log = structlog.get_logger(__name__)

_SQLITE_READONLY = 8


def is_read_only_refusal(exc: BaseException) -> bool:
    """Whether SQLite refused a write because the database was opened read-only."""
    return any(
        isinstance(error, sqlite3.Error)
        and (
            getattr(error, "sqlite_errorcode", 0) & 0xFF == _SQLITE_READONLY
            or "readonly database" in str(error).lower()
        )
        for error in chain(exc)
    )


def read_only_engine(database: Path) -> Engine | None:
    """An immutable, read-only engine on a cleanly closed SQLite database at the newest schema.

    ``None`` when that is not safe: the database is missing, its ``-wal`` holds frames not yet
    in the main file, or its schema is not the newest (it could not be migrated read-only).
    """
    wal = database.with_name(database.name + "-wal")
    try:
        if not database.is_file() or (wal.exists() and wal.stat().st_size > 0):
            return None
    except OSError:
        return None
    uri = f"file:{quote(str(database))}?mode=ro&immutable=1"
    engine = create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
    )
    # alembic loads only on this rare path: opening a store stays cheap.
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "fathom.store:migrations")
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except Exception:  # an unreadable file: the caller reports the full disk
        engine.dispose()
        return None
    if current != ScriptDirectory.from_config(config).get_current_head():
        engine.dispose()
        return None
    log.warning("store.read_only", reason="storage.full")
    return engine
