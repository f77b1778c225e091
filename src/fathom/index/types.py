"""The values indexes consume and return: chunks to index, change batches, filters, scores.

They live here, not in the store, so that ``fathom.index`` depends on nothing but the domain:
the store produces these values and every search backend consumes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ChangeBatch", "IndexFilter", "IndexableChunk", "ScoredId"]

# A chunk id with its score, best first in every list an index returns.
ScoredId = tuple[int, float]


@dataclass(frozen=True, slots=True)
class IndexableChunk:
    """Everything an index needs to (re)index one chunk.

    ``acl_tokens`` and ``metadata_tokens`` come from :mod:`fathom.index.vocabulary`.
    """

    chunk_id: int
    doc_id: str
    tenant_id: str
    title: str
    heading_path: tuple[str, ...]
    text: str
    acl_tokens: tuple[str, ...]
    metadata_tokens: tuple[str, ...]
    embedding: np.ndarray


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """Change-log rows after some sequence, reduced to what an index must do.

    Every chunk in ``removed`` (chunk id -> its tenant) is removed first; those also in
    ``added`` are then indexed again from the store, so replaying a batch is idempotent.
    """

    last_seq: int
    removed: Mapping[int, str]
    added: frozenset[int]


@dataclass(frozen=True, slots=True)
class IndexFilter:
    """What a query may see: one tenant, ACL tokens, and ``key=value`` metadata terms.

    ``acl_tokens`` of None means no ACL restriction (a tenant admin); otherwise a chunk passes
    when it carries at least one of them. Every metadata term must match. Build filters with
    :func:`fathom.index.vocabulary.filter_for`, which owns the token vocabulary.
    """

    tenant: str
    acl_tokens: tuple[str, ...] | None = ("*",)
    metadata: tuple[str, ...] = field(default_factory=tuple)

    @property
    def restricts_within_tenant(self) -> bool:
        """Whether chunks of the tenant can fail this filter (an ACL or a metadata term)."""
        return self.acl_tokens is not None or bool(self.metadata)
