"""Protocols every index backend implements, and the filter they all understand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fathom.store.database import IndexableChunk

__all__ = ["AllowedChunks", "DenseIndex", "IndexFilter", "LexicalIndex", "ScoredId"]

ScoredId = tuple[int, float]


@dataclass(frozen=True, slots=True)
class IndexFilter:
    """What a query may see: one tenant, ACL tokens, and ``key=value`` metadata terms.

    ``acl_tokens`` of None means no ACL restriction (an admin). Every metadata term
    must match.
    """

    tenant: str
    acl_tokens: tuple[str, ...] | None = ("*",)
    metadata: tuple[str, ...] = field(default_factory=tuple)


class AllowedChunks(Protocol):
    """The chunks one filter lets a query see, resolved lazily so no query costs O(corpus).

    Dense search asks for the cheap estimate first, then either every id (a small set,
    ranked exactly) or which of its HNSW candidates pass (a large set).
    """

    def excludes_nothing(self) -> bool:
        """True when every chunk passes, known without scanning (False when unsure)."""
        ...

    def upper_bound(self) -> int:
        """At least as many chunks as pass the filter, computed without scanning them."""
        ...

    def count(self) -> int:
        """How many chunks pass (costs time in proportion to their number)."""
        ...

    def ids(self) -> list[int]:
        """Every chunk id that passes (costs time in proportion to their number)."""
        ...

    def keep(self, chunk_ids: Sequence[int]) -> set[int]:
        """The ids among ``chunk_ids`` that pass."""
        ...


class _Positioned(Protocol):
    name: str

    def refresh(self) -> None:
        """Pick up changes another process applied to the persisted index."""
        ...

    def applied_sequence(self) -> int:
        """The last change-log sequence this index has applied."""
        ...

    def apply(self, removed: Sequence[int], added: Sequence[IndexableChunk], sequence: int) -> None:
        """Remove then add chunks, durably, and record ``sequence`` as applied (idempotent)."""
        ...

    def clear(self) -> None:
        """Drop everything (before a rebuild)."""
        ...

    def chunk_ids(self) -> set[int]:
        """Every chunk id in the index (for consistency checks)."""
        ...

    def size(self) -> int: ...


class LexicalIndex(_Positioned, Protocol):
    def search(self, query: str, limit: int, where: IndexFilter) -> list[ScoredId]:
        """BM25 search among chunks that pass ``where``; best first."""
        ...

    def allowed(self, where: IndexFilter) -> AllowedChunks:
        """The chunks that pass ``where``, as dense search needs them."""
        ...

    def document_frequencies(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(chunks in the index, chunks containing each analysed term)."""
        ...


class DenseIndex(_Positioned, Protocol):
    def search(
        self, vector: np.ndarray, limit: int, where: IndexFilter, allowed: AllowedChunks | None
    ) -> list[ScoredId]:
        """Nearest chunks by cosine similarity; when ``allowed`` is given, only among those."""
        ...
