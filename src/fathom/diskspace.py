"""Recognising a full disk, wherever the error comes from, as one :class:`~fathom.errors.StorageFull`.

A full disk shows up in many disguises: ``OSError(ENOSPC)`` or ``EDQUOT`` from Python's own
file writes, SQLite's ``SQLITE_FULL`` ("database or disk is full", wrapped by SQLAlchemy),
PostgreSQL's SQLSTATE ``53100`` (``disk_full``), and the index engines' messages ("No space
left on device (os error 28)"). Some engines lose the cause on the way (tantivy's writer
thread dies with "An index writer was killed ... io::Error most likely"); such a generic I/O
failure counts as a full disk only when the filesystem it wrote to has less than
:data:`LOW_SPACE_BYTES` free.

The store maps its errors in one SQLAlchemy ``handle_error`` hook (:mod:`fathom.store.space`);
index catch-up maps its own with :func:`storage_errors`. Either way a write fails whole, so the
error can honestly say that nothing partial was kept.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from fathom.errors import StorageFull

__all__ = [
    "INDEX_MESSAGE",
    "LOW_SPACE_BYTES",
    "STORE_MESSAGE",
    "chain",
    "is_storage_full",
    "storage_errors",
    "storage_full",
]

log = structlog.get_logger(__name__)

LOW_SPACE_BYTES = 64 * 1024 * 1024
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"
_FULL_MESSAGES = (
    "no space left on device",
    "os error 28",
    "disk quota exceeded",
    "os error 122",
    "database or disk is full",
    "could not extend file",
)
_IO_MESSAGES = ("io::error", "an io error occurred", "index writer was killed", "disk i/o error", "ioerror")

STORE_MESSAGE = "the disk is full: nothing was written; free some space and try again"
INDEX_MESSAGE = (
    "the disk is full: the search indexes could not be brought up to date (the store is intact, "
    "and they catch up once space is freed); free some space and try again"
)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and the DBAPI error SQLAlchemy wraps."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 16:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (current.__cause__, current.__context__, getattr(current, "orig", None)):
            if isinstance(linked, BaseException):
                todo.append(linked)


def _free_bytes(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def is_storage_full(exc: BaseException, path: Path | None = None) -> bool:
    """Whether ``exc`` means that the disk (or quota) holding ``path`` is full."""
    generic_io = False
    for error in chain(exc):
        if isinstance(error, StorageFull):
            return True
        if isinstance(error, OSError) and error.errno in _FULL_ERRNOS:
            return True
        if isinstance(error, sqlite3.Error) and getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if _PG_DISK_FULL in (getattr(error, "sqlstate", None), getattr(error, "pgcode", None)):
            return True
        message = str(error).lower()
        if any(text in message for text in _FULL_MESSAGES):
            return True
        generic_io = generic_io or any(text in message for text in _IO_MESSAGES)
    if generic_io and path is not None:
        free = _free_bytes(path)
        return free is not None and free < LOW_SPACE_BYTES
    return False


def storage_full(where: str, message: str) -> StorageFull:
    """The error to raise, logged once (without paths or text)."""
    log.error("storage.full", where=where)
    return StorageFull(message)


@contextmanager
def storage_errors(path: Path, *, where: str = "index", message: str = INDEX_MESSAGE) -> Iterator[None]:
    """Turn any full-disk error raised inside into :class:`~fathom.errors.StorageFull`."""
    try:
        yield
    except StorageFull:
        raise
    except Exception as exc:
        if is_storage_full(exc, path):
            raise storage_full(where, message) from exc
        raise
