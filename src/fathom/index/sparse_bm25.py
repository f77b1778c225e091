"""BM25 as sparse vectors, so PostgreSQL (pgvector's ``sparsevec``) computes true BM25 scores.

BM25 scores a chunk ``d`` for a query ``q`` as ``sum over terms t of q: idf(t) * w(t, d)`` with
``w(t, d) = tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avglen))``. ``w`` depends only on
the chunk (and the tenant's average length), ``idf`` only on the query term and the tenant's
document frequencies, so the score is the inner product of a stored chunk vector of ``w`` and a
query vector of ``idf``: pgvector's ``<#>``. Terms are the same lowercased English stems the
embedded backend's tantivy index makes (:func:`fathom.index.lexical.analyze`), each mapped to a
dimension by a stable hash.

The average length is the tenant's at the time a chunk is written (a reindex recomputes every
chunk with the final one). Chunks are token-bounded, so it settles after the first documents;
``bench/pg_lexical.py`` measures what this costs against the exact average (nothing measurable
on SciFact).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from fathom.domain import contextual_text
from fathom.index.lexical import analyze
from fathom.index.types import IndexableChunk
from fathom.normalize import fold_for_index

__all__ = [
    "B",
    "DIMENSIONS",
    "K1",
    "AnalyzedChunk",
    "analyze_chunk",
    "chunk_weights",
    "idf",
    "query_terms",
    "sparsevec_literal",
    "term_id",
]

# tantivy's (and Lucene's) defaults, so both backends rank alike.
K1 = 1.2
B = 0.75
# pgvector's largest sparsevec dimension; term ids are 1 .. DIMENSIONS - 1.
DIMENSIONS = 1_000_000_000


@functools.lru_cache(maxsize=1 << 16)
def term_id(term: str) -> int:
    """The dimension of an analysed term: a stable 64-bit hash folded into 1 .. DIMENSIONS - 1.

    Two terms share a dimension with probability about 1e-9 per pair (a few pairs in a vocabulary
    of a million terms); they then share a document frequency, which barely moves a score.
    """
    digest = hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (DIMENSIONS - 1) + 1


@dataclass(frozen=True, slots=True)
class AnalyzedChunk:
    """A chunk's term frequencies by term id, and its length in terms."""

    frequencies: Mapping[int, int]
    length: int


def analyze_chunk(chunk: IndexableChunk, *, context_in_body: bool = True) -> AnalyzedChunk:
    """The terms of what BM25 ranks: the chunk's text with its title and heading path (by default)."""
    body = (
        fold_for_index(contextual_text(chunk.title, chunk.heading_path, chunk.text))
        if context_in_body
        else chunk.text
    )
    terms = analyze(body)
    return AnalyzedChunk(Counter(term_id(term) for term in terms), len(terms))


def chunk_weights(
    chunk: AnalyzedChunk, average_length: float, k1: float = K1, b: float = B
) -> dict[int, float]:
    """The saturated, length-normalised term weights ``w(t, d)`` of one chunk."""
    norm = k1 * (1.0 - b + b * chunk.length / max(average_length, 1.0))
    return {term: tf * (k1 + 1.0) / (tf + norm) for term, tf in chunk.frequencies.items()}


def idf(chunks: int, frequency: int) -> float:
    """BM25's inverse document frequency (Lucene's, always positive)."""
    return math.log(1.0 + (chunks - frequency + 0.5) / (frequency + 0.5))


def query_terms(text: str) -> dict[int, int]:
    """Term ids of a query with how often each occurs (a repeated word counts again, as in tantivy)."""
    return dict(Counter(term_id(term) for term in analyze(text)))


def sparsevec_literal(weights: Mapping[int, float]) -> str:
    """pgvector's text form of a sparse vector (indices ascending, 1-based)."""
    body = ",".join(f"{term}:{weight:.7g}" for term, weight in sorted(weights.items()))
    return f"{{{body}}}/{DIMENSIONS}"
