"""Vector search with usearch: exact below a size threshold, HNSW above it."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
from usearch.index import Index

from fathom.errors import ConfigError
from fathom.index.base import IndexFilter, ScoredId
from fathom.index.position import read_position, write_position
from fathom.store.database import IndexableChunk

__all__ = ["UsearchIndex"]

# Above this many allowed ids a filtered query walks the HNSW graph and filters the
# candidates, widening until it has enough; below it, it ranks the allowed vectors exactly.
_EXACT_SUBSET_LIMIT = 50_000


class UsearchIndex:
    """The embedded dense index, stored in one usearch file."""

    name = "dense"

    def __init__(self, path: Path, *, exact_below: int = 50_000) -> None:
        self._path = path
        self._position_file = path.with_suffix(".position")
        self._exact_below = exact_below
        self._lock = threading.RLock()
        # The dimension comes from the saved file, or from the first vectors added.
        self._index: Index | None = None
        self._loaded_sequence = -1
        self.refresh()

    def refresh(self) -> None:
        """Reload from disk when another process has applied changes since we loaded."""
        with self._lock:
            sequence = read_position(self._position_file)
            if sequence == self._loaded_sequence:
                return
            self._index = Index.restore(str(self._path)) if self._path.exists() else None
            self._loaded_sequence = sequence

    @staticmethod
    def _new(dim: int) -> Index:
        return Index(ndim=dim, metric="cos", dtype="f32", multi=False)

    def _checked_dim(self, index: Index, dim: int) -> None:
        if index.ndim != dim:
            raise ConfigError(
                f"the dense index holds {index.ndim}-dimensional vectors but the embedder makes "
                f"{dim}-dimensional ones; run `fathom reindex`"
            )

    def applied_sequence(self) -> int:
        return read_position(self._position_file)

    def apply(self, removed: Sequence[int], added: Sequence[IndexableChunk], sequence: int) -> None:
        with self._lock:
            if self._index is None:
                if not added:
                    write_position(self._position_file, sequence)
                    self._loaded_sequence = sequence
                    return
                self._index = self._new(len(added[0].embedding))
            index = self._index
            present = [k for k in removed if index.contains(k)]
            if present:
                index.remove(np.asarray(present, dtype=np.uint64))
            if added:
                self._checked_dim(index, len(added[0].embedding))
                keys = np.asarray([c.chunk_id for c in added], dtype=np.uint64)
                existing = [int(k) for k in keys if index.contains(int(k))]
                if existing:
                    index.remove(np.asarray(existing, dtype=np.uint64))
                vectors = np.stack([c.embedding for c in added]).astype(np.float32)
                index.add(keys, vectors, threads=1)
            self._save(index)
            write_position(self._position_file, sequence)
            self._loaded_sequence = sequence

    def _save(self, index: Index) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        index.save(str(tmp))
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self._path)

    def clear(self) -> None:
        with self._lock:
            self._index = None
            self._path.unlink(missing_ok=True)
            self._position_file.unlink(missing_ok=True)
            self._loaded_sequence = 0

    def size(self) -> int:
        return 0 if self._index is None else int(len(self._index))

    def chunk_ids(self) -> set[int]:
        return set() if self._index is None else {int(k) for k in self._index.keys}

    def search(
        self, vector: np.ndarray, limit: int, where: IndexFilter, allowed: Sequence[int] | None
    ) -> list[ScoredId]:
        del where  # dense keys carry no attributes: the caller resolves the filter to `allowed`
        with self._lock:
            index = self._index
            if index is None or len(index) == 0 or limit <= 0:
                return []
            size = len(index)
            self._checked_dim(index, len(vector))
            query = np.asarray(vector, dtype=np.float32)
            if allowed is None:
                matches = index.search(query, min(limit, size), exact=size < self._exact_below, threads=1)
                return [
                    (int(k), 1.0 - float(d)) for k, d in zip(matches.keys, matches.distances, strict=True)
                ]
            if not allowed:
                return []
            if len(allowed) <= _EXACT_SUBSET_LIMIT:
                keys = np.asarray(allowed, dtype=np.uint64)
                vectors = np.stack(cast(Sequence[np.ndarray], index.get(keys))).astype(np.float32, copy=False)
                scores = vectors @ query
                top = np.argsort(-scores)[:limit]
                return [(int(keys[i]), float(scores[i])) for i in top]
            allowed_set = set(allowed)
            want = limit * 4
            while True:
                matches = index.search(query, min(want, size), threads=1)
                hits = [
                    (int(k), 1.0 - float(d))
                    for k, d in zip(matches.keys, matches.distances, strict=True)
                    if int(k) in allowed_set
                ]
                if len(hits) >= limit or want >= size:
                    return hits[:limit]
                want *= 4
