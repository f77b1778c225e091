"""The search-backend seam: what every engine behind fathom's retrieval implements.

A backend holds derived data fed from the store of record's change log (``apply`` with the
sequence reached) and answers one :class:`SearchRequest` with two candidate lists, lexical
and dense. Tenant, ACL and metadata filtering happen inside the backend's own queries, in one
consistent snapshot, before ranking; ranking statistics (BM25 document frequencies) are per
tenant. Fusion, reranking and everything after stay in fathom, identical for every backend.

Every backend passes :class:`fathom.testing.backend.SearchBackendConformance`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from fathom.index.types import ChangeBatch, IndexableChunk, IndexFilter, ScoredId

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["Candidates", "ChangeSource", "SearchBackend", "SearchRequest", "TransactionalIndex"]


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One query: its text for lexical search, its vector for dense search, who may see what.

    Either side may be skipped: an empty ``text`` has no lexical candidates, a ``vector`` of
    None no dense ones. ``depth`` is how many candidates each list may hold.
    """

    text: str
    vector: np.ndarray | None
    where: IndexFilter
    depth: int


@dataclass(frozen=True, slots=True)
class Candidates:
    """What a backend found, best first in each list, each already filtered."""

    lexical: list[ScoredId]
    dense: list[ScoredId]
    timings_ms: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class SearchBackend(Protocol):
    """An engine holding the searchable form of the chunks (see the module docstring)."""

    name: str

    def applied_sequence(self) -> int:
        """The last change-log sequence this backend has applied (0 when empty)."""
        ...

    def apply(self, removed: Mapping[int, str], added: Sequence[IndexableChunk], sequence: int) -> None:
        """Remove ``removed`` (chunk id -> tenant), then add ``added``, and record ``sequence``.

        Durable when it returns; replaying the same batch leaves the same state (idempotent).
        """
        ...

    def clear(self) -> None:
        """Drop every chunk and the recorded position (before a rebuild)."""
        ...

    def size(self) -> int:
        """How many chunks the backend holds (all tenants)."""
        ...

    def sizes(self) -> dict[str, int]:
        """Chunks held by each part of the backend (e.g. its lexical and dense index), for status."""
        ...

    def chunk_ids(self) -> set[int]:
        """Every chunk id the backend holds, for consistency checks (costs O(size))."""
        ...

    def search(self, request: SearchRequest) -> Candidates:
        """Lexical and dense candidates among the chunks ``request.where`` lets through."""
        ...

    def document_frequencies(self, tenant: str, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(chunks of the tenant, chunks of the tenant containing each analysed term)."""
        ...

    def close(self) -> None:
        """Release files, connections and threads."""
        ...


@runtime_checkable
class TransactionalIndex(Protocol):
    """A backend stored in the store of record's own database, written in the store's transactions.

    The store calls :meth:`write` inside the transaction that changes documents and chunks, so
    the search rows commit with them: every node sees a commit at once and nothing catches up.
    ``apply`` still works (rebuilds, and changes written by a store without this backend).
    """

    def write(
        self,
        connection: Connection,
        removed: Mapping[int, str],
        added: Sequence[IndexableChunk],
        previous_sequence: int,
        sequence: int,
    ) -> None:
        """Like ``apply``, on the store's ``connection``; the position moves from ``previous_sequence``
        (the change-log head this transaction follows) to ``sequence`` only if it was there."""
        ...

    def exclusive(self) -> AbstractContextManager[None]:
        """Held while catching up or rebuilding, across every process sharing the database."""
        ...


class ChangeSource(Protocol):
    """Where backends are fed from: the store of record's change log (``fathom.store.Store``)."""

    def last_sequence(self) -> int:
        """The highest sequence committed so far."""
        ...

    def stable_sequence(self) -> int:
        """The highest sequence at or below which every change has committed (none may still
        commit below it); what catch-up reads up to."""
        ...

    def changes_since(
        self, seq: int, limit: int = 20_000, until: int | None = None
    ) -> ChangeBatch | None: ...

    def indexable_chunks(self, chunk_ids: Sequence[int]) -> list[IndexableChunk]: ...

    def all_chunk_ids(self) -> list[int]: ...
