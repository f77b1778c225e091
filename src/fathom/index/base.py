"""Protocols every index backend implements, and the filter they all understand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fathom.store.database import IndexableChunk

__all__ = ["DenseIndex", "IndexFilter", "LexicalIndex", "ScoredId"]

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

    def count(self, where: IndexFilter) -> int:
        """How many chunks pass ``where``."""
        ...

    def allowed_ids(self, where: IndexFilter) -> list[int]:
        """Every chunk id that passes ``where`` (restricts dense search to the same set)."""
        ...

    def document_frequencies(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(chunks in the index, chunks containing each analysed term)."""
        ...


class DenseIndex(_Positioned, Protocol):
    def search(
        self, vector: np.ndarray, limit: int, where: IndexFilter, allowed: Sequence[int] | None
    ) -> list[ScoredId]:
        """Nearest chunks by cosine similarity; when ``allowed`` is given, only among those ids."""
        ...
