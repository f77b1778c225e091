"""The compaction step (``fathom compact``): what a delete leaves in files, erased.

A delete commits at once and is invisible to every search from then on, but copies of the
deleted text and vectors can stay in files until they are rewritten: tantivy segments keep
deleted documents until merged, the usearch graph keeps removed vectors' bytes, SQLite's WAL
keeps old page images and PostgreSQL keeps dead tuples. Compaction rewrites each of them
(docs/privacy.md lists exactly what is erased where).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from fathom.index.catchup import Indexer
from fathom.store.compaction import StoreCompaction, compact_store
from fathom.store.database import Store
from fathom.store.retention import RetentionPolicy, purge_expired

__all__ = ["Compaction", "compact"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Compaction:
    """What one compaction did."""

    partitions: int
    store: StoreCompaction
    # Rows past ``retention_days`` removed first, by kind (answers, feedback, jobs).
    expired: dict[str, int]


def compact(store: Store, indexer: Indexer, retention: RetentionPolicy) -> Compaction:
    """Apply retention, rewrite the embedded index partitions from live chunks, compact the store."""
    expired = purge_expired(store, retention)
    partitions = indexer.compact()
    done = compact_store(store)
    log.info(
        "compaction.done",
        partitions=partitions,
        expired=expired,
        dialect=done.dialect,
        wal_frames_left=done.wal_frames_left,
        busy=done.busy,
    )
    return Compaction(partitions=partitions, store=done, expired=expired)
