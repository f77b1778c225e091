"""Keep derived indexes in step with the store of record's change log."""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from fathom.index.base import DenseIndex, LexicalIndex
from fathom.store.database import Store
from fathom.store.space import storage_errors

__all__ = ["IndexSet"]

log = structlog.get_logger(__name__)

Progress = Callable[[int, int], None]


class IndexSet:
    """The lexical and dense index of one home, caught up from the change log.

    A file lock makes catch-up and rebuild exclusive across processes sharing a
    home; each index applies a batch, persists it, then records its position, so a
    crash at any point is repaired by replaying the tail of the log.
    """

    def __init__(self, store: Store, lexical: LexicalIndex, dense: DenseIndex, lock_path: Path) -> None:
        self.store = store
        self.lexical = lexical
        self.dense = dense
        self._lock_path = lock_path

    @property
    def indexes(self) -> tuple[LexicalIndex, DenseIndex]:
        return (self.lexical, self.dense)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def behind(self) -> bool:
        head = self.store.last_sequence()
        for index in self.indexes:
            index.refresh()
        return any(index.applied_sequence() < head for index in self.indexes)

    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply every change-log row the indexes have not seen; returns rows applied.

        Raises:
            StorageFull: the disk is full; each index stays at its last recorded position.
        """
        with storage_errors(self._lock_path.parent):
            return self._catch_up(progress)

    def _catch_up(self, progress: Progress | None) -> int:
        if not self.behind():
            return 0
        applied = 0
        with self._exclusive():
            head = self.store.last_sequence()
            for index in self.indexes:
                index.refresh()
            positions = {index.name: index.applied_sequence() for index in self.indexes}
            while (position := min(positions.values())) < head:
                batch = self.store.changes_since(position)
                if batch is None:
                    break
                # One read of the store feeds every index that stands at this position
                # (usually all of them); an index further ahead waits for its turn.
                added = self.store.indexable_chunks(sorted(batch.added))
                for index in self.indexes:
                    if positions[index.name] == position:
                        index.apply(sorted(batch.removed), added, batch.last_seq)
                        positions[index.name] = batch.last_seq
                applied += batch.last_seq - position
                if progress is not None:
                    progress(batch.last_seq, head)
            log.debug("index.caught_up", positions=positions)
        return applied

    def rebuild(self, progress: Progress | None = None, batch_size: int = 10_000) -> None:
        """Rebuild every index from the store of record, from scratch (``StorageFull`` if the disk is)."""
        with storage_errors(self._lock_path.parent):
            self._rebuild(progress, batch_size)

    def _rebuild(self, progress: Progress | None, batch_size: int) -> None:
        with self._exclusive():
            head = self.store.last_sequence()
            ids = self.store.all_chunk_ids()
            for index in self.indexes:
                index.clear()
            done = 0
            for start in range(0, max(len(ids), 1), batch_size):
                part = ids[start : start + batch_size]
                chunks = self.store.indexable_chunks(part)
                last = start + batch_size >= len(ids)
                # Positions only reach the head with the final batch, so an interrupted
                # rebuild is resumed by catch-up replaying from the start.
                sequence = head if last else 0
                for index in self.indexes:
                    index.apply([], chunks, sequence)
                done += len(part)
                if progress is not None:
                    progress(done, len(ids))
            log.info("index.rebuilt", chunks=len(ids), sequence=head)
