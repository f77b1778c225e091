"""Keep a search backend in step with the store of record's change log."""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from fathom.diskspace import storage_errors
from fathom.index.backend import ChangeSource, SearchBackend, TransactionalIndex

__all__ = ["Indexer", "Progress"]

log = structlog.get_logger(__name__)

Progress = Callable[[int, int], None]


class Indexer:
    """Feeds one backend from the change log: catch-up after commits, and full rebuilds.

    A file lock (or, for a backend in the shared database, the backend's own lock) makes
    catch-up and rebuild exclusive across processes sharing a home; the
    backend applies a batch, persists it, then records its position, so a crash at any point
    is repaired by replaying the tail of the log.

    Catch-up and rebuild read the log only up to the source's *stable* sequence, below which
    every change has committed: with writers committing in parallel (PostgreSQL, the postgres
    backend) a lower sequence may commit after a higher one, and a position past it would skip
    it for good.
    """

    def __init__(self, source: ChangeSource, backend: SearchBackend, lock_path: Path) -> None:
        self.source = source
        self.backend = backend
        self._lock_path = lock_path

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        if isinstance(self.backend, TransactionalIndex):
            # A backend in the shared database locks there: no lock file on the node.
            with self.backend.exclusive():
                yield
            return
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def behind(self) -> bool:
        return self.backend.applied_sequence() < self.source.last_sequence()

    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply every change-log row the backend has not seen; returns rows applied.

        Raises:
            StorageFull: the disk is full; the backend stays at its last recorded position.
        """
        with storage_errors(self._lock_path.parent):
            return self._catch_up(progress)

    def _catch_up(self, progress: Progress | None) -> int:
        if not self.behind():
            return 0
        applied = 0
        with self._exclusive():
            head = self.source.stable_sequence()
            position = self.backend.applied_sequence()
            while position < head:
                batch = self.source.changes_since(position, until=head)
                if batch is None:
                    break
                added = self.source.indexable_chunks(sorted(batch.added))
                self.backend.apply(batch.removed, added, batch.last_seq)
                applied += batch.last_seq - position
                position = batch.last_seq
                if progress is not None:
                    progress(position, head)
            log.debug("index.caught_up", backend=self.backend.name, position=position)
        return applied

    def rebuild(self, progress: Progress | None = None, batch_size: int = 10_000) -> None:
        """Rebuild the backend from the store of record, from scratch (``StorageFull`` if the disk is)."""
        with storage_errors(self._lock_path.parent):
            self._rebuild(progress, batch_size)

    def _rebuild(self, progress: Progress | None, batch_size: int) -> None:
        with self._exclusive():
            # Every change up to ``head`` has committed, so its chunks are among ``ids``; changes
            # after it are replayed by the next catch-up.
            head = self.source.stable_sequence()
            ids = self.source.all_chunk_ids()
            self.backend.clear()
            done = 0
            for start in range(0, max(len(ids), 1), batch_size):
                part = ids[start : start + batch_size]
                chunks = self.source.indexable_chunks(part)
                last = start + batch_size >= len(ids)
                # The position only reaches the head with the final batch, so an interrupted
                # rebuild is resumed by catch-up replaying from the start.
                self.backend.apply({}, chunks, head if last else 0)
                done += len(part)
                if progress is not None:
                    progress(done, len(ids))
            log.info("index.rebuilt", backend=self.backend.name, chunks=len(ids), sequence=head)

    def compact(self) -> int:
        """Catch up, then let the backend drop deleted chunks from its files (``fathom compact``);
        returns the partitions rewritten (0 for a backend without files of its own)."""
        with storage_errors(self._lock_path.parent):
            self._catch_up(None)
            compact = getattr(self.backend, "compact", None)
            if compact is None:
                return 0
            with self._exclusive():
                return int(compact(self.source.indexable_chunks))
