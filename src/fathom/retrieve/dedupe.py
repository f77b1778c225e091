"""Collapse near-duplicate passages in results, keeping where each copy came from.

Collections repeat themselves: the same boilerplate in twenty manuals, the same
paragraph in three versions of a policy. Results keep the best-ranked copy and
list the sources of the others in ``Hit.also_in``, so an answer does not cite the
same text five times and no provenance is lost.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from fathom.domain import Hit
from fathom.ingest.fingerprint import PERMUTATIONS, fingerprint

__all__ = ["FingerprintCache", "collapse_near_duplicates"]


class FingerprintCache:
    """Fingerprints of chunks by id (chunk ids are never reused, so an entry never goes stale)."""

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._marks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, chunk_id: int, mark: np.ndarray) -> None:
        """Keep a fingerprint computed elsewhere (stored with the chunk at ingest)."""
        with self._lock:
            self._marks[chunk_id] = mark
            self._marks.move_to_end(chunk_id)
            while len(self._marks) > self._size:
                self._marks.popitem(last=False)

    def get(self, hit: Hit) -> np.ndarray:
        with self._lock:
            mark = self._marks.get(hit.chunk_id)
            if mark is not None:
                self._marks.move_to_end(hit.chunk_id)
                return mark
        mark = fingerprint(hit.text)
        self.remember(hit.chunk_id, mark)
        return mark


def collapse_near_duplicates(
    hits: Sequence[Hit],
    threshold: float,
    limit: int | None = None,
    cache: FingerprintCache | None = None,
) -> list[Hit]:
    """``hits`` in order without near-duplicates of better-ranked hits (``threshold`` 0: unchanged).

    Stops once ``limit`` hits are kept, so only the hits that can still be returned are
    fingerprinted; each new hit is compared with every kept one in one vector operation.
    """
    if threshold <= 0 or len(hits) < 2:
        return list(hits)[:limit]
    marks = cache or FingerprintCache(len(hits))
    kept: list[tuple[Hit, list[str]]] = []
    kept_marks = np.empty((len(hits), PERMUTATIONS), dtype=np.uint64)
    needed = threshold * PERMUTATIONS  # equal positions out of PERMUTATIONS
    for hit in hits:
        if limit is not None and len(kept) >= limit:
            break
        mark = marks.get(hit)
        if kept:
            shared = np.count_nonzero(kept_marks[: len(kept)] == mark, axis=1)
            best = int(np.argmax(shared))
            if shared[best] >= needed:
                kept[best][1].append(hit.source)
                continue
        kept_marks[len(kept)] = mark
        kept.append((hit, []))
    return [replace(hit, also_in=tuple(dict.fromkeys(also))) if also else hit for hit, also in kept]
