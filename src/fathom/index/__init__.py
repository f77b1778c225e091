"""Search backends fed by the change log: the seam (:mod:`fathom.index.backend`), the embedded
tantivy + usearch backend, and the registry that builds the configured one."""

from fathom.index.backend import Candidates, ChangeSource, SearchBackend, SearchRequest
from fathom.index.catchup import Indexer
from fathom.index.types import ChangeBatch, IndexableChunk, IndexFilter, ScoredId

__all__ = [
    "Candidates",
    "ChangeBatch",
    "ChangeSource",
    "IndexFilter",
    "IndexableChunk",
    "Indexer",
    "ScoredId",
    "SearchBackend",
    "SearchRequest",
]
