"""Hybrid retrieval: BM25 and dense search in parallel, filtered, then fused."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import structlog

from fathom.config import Settings
from fathom.domain import Hit, contextual_text
from fathom.embed.base import Embedder
from fathom.errors import StorageFull
from fathom.index.base import AllowedChunks, IndexFilter, ScoredId
from fathom.index.catchup import IndexSet
from fathom.rerank.base import Reranker
from fathom.retrieve.dedupe import FingerprintCache
from fathom.retrieve.fusion import reciprocal_rank_fusion, weighted_fusion, zscore_fusion

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
    """Catches the indexes up and runs the lexical search while the query is embedded, then
    dense search, then fusion."""

    def __init__(
        self, indexes: IndexSet, embedder: Embedder, settings: Settings, reranker: Reranker | None = None
    ) -> None:
        self._indexes = indexes
        self._embedder = embedder
        self._settings = settings
        self._reranker = reranker
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fathom-retrieve")
        # Fingerprints of fetched chunks, for collapsing near-duplicates in results.
        self.fingerprints = FingerprintCache()

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def retrieve(
        self, query: str, where: IndexFilter, limit: int, *, dense_query: str | None = None
    ) -> RetrievalTrace:
        """BM25 for ``query`` and dense search for ``dense_query`` (default ``query``), fused.

        ``dense_query`` is how HyDE searches: a hypothetical passage is embedded for the dense
        side while BM25 keeps the question. The trace's ``query_vector`` is the vector searched.
        """
        settings = self._settings
        depth = max(settings.candidates, limit)
        started = time.perf_counter()
        # The query is embedded on the calling thread: torch's two-thread kernels run about
        # twice as slow from a pool thread (4.3 vs 8.4 ms for one SciFact query, int8). Meanwhile
        # a pool thread applies what other writers committed and runs the BM25 search.
        lexical_side = self._pool.submit(self._lexical, query, depth, where)
        try:
            vector = self._embedder.embed_query(dense_query or query)
        finally:
            lexical, allowed, lexical_ms = lexical_side.result()
        dense_started = time.perf_counter()
        dense = self._indexes.dense.search(vector, depth, where, allowed)
        dense_ms = (time.perf_counter() - dense_started) * 1000
        fused = self._fuse(lexical, dense)
        timings = {"lexical": lexical_ms, "dense": dense_ms}
        return self._finish(query, lexical, dense, fused, vector, timings, limit, started)

    def retrieve_many(self, queries: Sequence[str], where: IndexFilter, limit: int) -> RetrievalTrace:
        """Each query searched as by :meth:`retrieve`, then their fused lists fused again by RRF.

        The first query is the question: the reranker scores against it and the trace's
        ``lexical``, ``dense`` and ``query_vector`` are its own. Queries are embedded on the
        worker pool while BM25 runs on this thread.
        """
        if len(queries) == 1:
            return self.retrieve(queries[0], where, limit)
        settings = self._settings
        depth = max(settings.candidates, limit)
        started = time.perf_counter()
        embeddings = [self._pool.submit(self._embedder.embed_query, query) for query in queries]
        self._catch_up()
        lexical_started = time.perf_counter()
        lexicals = [self._indexes.lexical.search(query, depth, where) for query in queries]
        allowed = self._indexes.lexical.allowed(where)
        lexical_ms = (time.perf_counter() - lexical_started) * 1000
        vectors = [embedding.result() for embedding in embeddings]
        dense_started = time.perf_counter()
        denses = [self._indexes.dense.search(vector, depth, where, allowed) for vector in vectors]
        dense_ms = (time.perf_counter() - dense_started) * 1000
        fusion_started = time.perf_counter()
        per_query = [self._fuse(lexical, dense) for lexical, dense in zip(lexicals, denses, strict=True)]
        fused = reciprocal_rank_fusion(per_query, [1.0] * len(per_query), k=settings.rrf_k)
        timings = {
            "lexical": lexical_ms,
            "dense": dense_ms,
            "fusion": (time.perf_counter() - fusion_started) * 1000,
        }
        return self._finish(queries[0], lexicals[0], denses[0], fused, vectors[0], timings, limit, started)

    def _fuse(self, lexical: list[ScoredId], dense: list[ScoredId]) -> list[ScoredId]:
        settings = self._settings
        weights = (settings.lexical_weight, settings.dense_weight)
        if settings.fusion == "zscore":
            return zscore_fusion(
                [lexical, dense],
                weights,
                (0.0, settings.dense_min_spread),
                rank_weight=settings.fusion_rank_weight,
                rank_k=settings.rrf_k,
            )
        if settings.fusion == "rrf":
            return reciprocal_rank_fusion([lexical, dense], weights, k=settings.rrf_k)
        return weighted_fusion([lexical, dense], weights)

    def _finish(
        self,
        query: str,
        lexical: list[ScoredId],
        dense: list[ScoredId],
        fused: list[ScoredId],
        vector: np.ndarray,
        timings: dict[str, float],
        limit: int,
        started: float,
    ) -> RetrievalTrace:
        if self._reranker is not None and fused:
            rerank_started = time.perf_counter()
            fused = self._rerank(query, fused, max(self._settings.rerank_depth, limit))
            timings["rerank"] = (time.perf_counter() - rerank_started) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return RetrievalTrace(
            lexical=lexical, dense=dense, fused=fused, query_vector=vector, timings_ms=timings
        )

    def _catch_up(self) -> None:
        """Apply what writers committed; on a full disk, search the indexes as they stand."""
        try:
            self._indexes.catch_up()
        except StorageFull:
            log.warning("index.catch_up_failed", code=StorageFull.code)

    def _lexical(
        self, query: str, depth: int, where: IndexFilter
    ) -> tuple[list[ScoredId], AllowedChunks, float]:
        self._catch_up()
        started = time.perf_counter()
        lexical = self._indexes.lexical.search(query, depth, where)
        allowed = self._indexes.lexical.allowed(where)
        return lexical, allowed, (time.perf_counter() - started) * 1000

    def _rerank(self, query: str, fused: list[ScoredId], depth: int) -> list[ScoredId]:
        """Reorder the top ``depth`` candidates by the reranker's score; the rest keep their order
        below them (their fused scores are shifted under the lowest reranked score)."""
        assert self._reranker is not None
        head = fused[:depth]
        chunks = self._indexes.store.chunks_by_id([chunk_id for chunk_id, _ in head])
        present = [(chunk_id, chunks[chunk_id]) for chunk_id, _ in head if chunk_id in chunks]
        scores = self._reranker.score(
            query, [contextual_text(chunk.title, chunk.heading_path, chunk.text) for _, chunk in present]
        )
        reranked = sorted(
            ((chunk_id, score) for (chunk_id, _), score in zip(present, scores, strict=True)),
            key=lambda pair: -pair[1],
        )
        floor = min((score for _, score in reranked), default=0.0)
        tail = [(chunk_id, floor - 1.0 - rank) for rank, (chunk_id, _) in enumerate(fused[depth:])]
        return reranked + tail

    def hits(self, trace: RetrievalTrace, stop: int, start: int = 0) -> list[Hit]:
        """The fused candidates ``[start, stop)`` read from the store, in order.

        Their stored fingerprints go into :attr:`fingerprints` on the way.
        """
        top = trace.fused[start:stop]
        chunks = self._indexes.store.chunks_by_id([chunk_id for chunk_id, _ in top])
        hits: list[Hit] = []
        for chunk_id, score in top:
            chunk = chunks.get(chunk_id)
            if chunk is None:  # deleted between index read and store read
                continue
            if chunk.minhash is not None:
                self.fingerprints.remember(chunk_id, chunk.minhash)
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
                    page=chunk.page,
                )
            )
        return hits
