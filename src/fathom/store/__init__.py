"""Store of record (SQLAlchemy) and its change log."""

from fathom.store.database import ChunkDraft, Store, StoredChunk

__all__ = ["ChunkDraft", "Store", "StoredChunk"]
