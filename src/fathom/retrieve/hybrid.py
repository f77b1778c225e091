"""Hybrid retrieval: BM25 and dense search in parallel, filtered, then fused."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import structlog

from fathom.config import Settings
from fathom.domain import Hit
from fathom.embed.base import Embedder
from fathom.index.base import IndexFilter, ScoredId
from fathom.index.catchup import IndexSet
from fathom.retrieve.fusion import reciprocal_rank_fusion, weighted_fusion

__all__ = ["HybridRetriever", "RetrievalTrace"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetrievalTrace:
    lexical: list[ScoredId]
    dense: list[ScoredId]
    fused: list[ScoredId]
    query_vector: np.ndarray
    timings_ms: dict[str, float]


class HybridRetriever:
    """Runs the lexical search while the query is embedded, then dense search, then fusion."""

    def __init__(self, indexes: IndexSet, embedder: Embedder, settings: Settings) -> None:
        self._indexes = indexes
        self._embedder = embedder
        self._settings = settings
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fathom-retrieve")

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def retrieve(self, query: str, where: IndexFilter, limit: int) -> RetrievalTrace:
        settings = self._settings
        depth = max(settings.candidates, limit)
        started = time.perf_counter()
        embedding = self._pool.submit(self._embedder.embed_query, query)
        lexical_started = time.perf_counter()
        lexical = self._indexes.lexical.search(query, depth, where)
        allowed = self._indexes.lexical.allowed(where)
        lexical_ms = (time.perf_counter() - lexical_started) * 1000
        vector = embedding.result()
        dense_started = time.perf_counter()
        dense = self._indexes.dense.search(vector, depth, where, allowed)
        dense_ms = (time.perf_counter() - dense_started) * 1000
        weights = (settings.lexical_weight, settings.dense_weight)
        if settings.fusion == "rrf":
            fused = reciprocal_rank_fusion([lexical, dense], weights, k=settings.rrf_k)
        else:
            fused = weighted_fusion([lexical, dense], weights)
        total_ms = (time.perf_counter() - started) * 1000
        return RetrievalTrace(
            lexical=lexical,
            dense=dense,
            fused=fused,
            query_vector=vector,
            timings_ms={"lexical": lexical_ms, "dense": dense_ms, "total": total_ms},
        )

    def hits(self, trace: RetrievalTrace, limit: int) -> list[Hit]:
        top = trace.fused[:limit]
        chunks = self._indexes.store.chunks_by_id([chunk_id for chunk_id, _ in top])
        hits: list[Hit] = []
        for chunk_id, score in top:
            chunk = chunks.get(chunk_id)
            if chunk is None:  # deleted between index read and store read
                continue
            hits.append(
                Hit(
                    doc_id=chunk.doc_id,
                    chunk_id=chunk.chunk_id,
                    source=chunk.source,
                    title=chunk.title,
                    score=round(score, 6),
                    text=chunk.text,
                    start=chunk.start,
                    end=chunk.end,
                    heading_path=chunk.heading_path,
                )
            )
        return hits
