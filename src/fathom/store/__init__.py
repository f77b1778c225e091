"""Store of record (SQLAlchemy) and its change log."""

from fathom.store.database import ChangeBatch, ChunkDraft, IndexableChunk, Store, StoredChunk

__all__ = ["ChangeBatch", "ChunkDraft", "IndexableChunk", "Store", "StoredChunk"]
