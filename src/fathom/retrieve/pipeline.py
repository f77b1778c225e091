"""The query side of fathom in one place: check, filter, transform, retrieve, read and collapse.

Every front (Python API, CLI, HTTP, MCP) searches through :class:`SearchPipeline`; answering
(:mod:`fathom.answer.pipeline`) starts from its results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fathom.config import Settings
from fathom.domain import Hit, Principal, QueryTransformTrace, SearchResult
from fathom.embed.base import Embedder
from fathom.errors import InvalidQuery
from fathom.index.catchup import Indexer
from fathom.index.types import IndexFilter
from fathom.index.vocabulary import filter_for
from fathom.rerank.base import create_reranker
from fathom.retrieve.dedupe import collapse_near_duplicates
from fathom.retrieve.hybrid import HybridRetriever, RetrievalTrace
from fathom.retrieve.transform import Completer, QueryTransformer
from fathom.store.database import Store
from fathom.telemetry import Telemetry

__all__ = ["SearchPipeline", "StageObserver"]

# Called with a pipeline stage name ("lexical", "dense", "retrieve", "answer" ...) and its seconds.
StageObserver = Callable[[str, float], None]


@dataclass(frozen=True, slots=True)
class _Query:
    """A checked query and the filter of what its principal may see."""

    text: str
    where: IndexFilter


class SearchPipeline:
    """Search for a principal: the stages every query goes through, in order.

    Args:
        settings: the settings (candidates, fusion, near-duplicate threshold, transforms ...).
        store: the store of record hits are read from.
        indexer: the search backend and the change log feeding it.
        embedder: returns the query embedder (loaded on first use).
        completer: returns the LLM that query transforms use, or None without one.
        telemetry: where each stage's duration and span go.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        indexer: Indexer,
        embedder: Callable[[], Embedder],
        completer: Callable[[], Completer | None],
        telemetry: Telemetry,
    ) -> None:
        self._settings = settings
        self._store = store
        self._indexer = indexer
        self._embedder = embedder
        self._completer = completer
        self._telemetry = telemetry
        self._retriever: HybridRetriever | None = None
        self._transformer: QueryTransformer | None = None

    @property
    def retriever(self) -> HybridRetriever:
        """The hybrid retriever (its embedder and reranker load on first use)."""
        if self._retriever is None:
            settings = self._settings
            reranker = (
                create_reranker(settings.reranker, device=settings.device) if settings.reranker else None
            )
            self._retriever = HybridRetriever(
                self._indexer, self._store, self._embedder(), settings, reranker
            )
        return self._retriever

    def close(self) -> None:
        if self._retriever is not None:
            self._retriever.close()

    def prepare(self, query: str, principal: Principal, filters: Mapping[str, str] | None) -> _Query:
        """The query stripped and checked, with the filter of what ``principal`` may read.

        Raises:
            InvalidQuery: an empty query, or one longer than ``max_query_chars``.
        """
        query = query.strip()
        if not query:
            raise InvalidQuery("the query is empty", code="query.empty")
        if len(query) > self._settings.max_query_chars:
            raise InvalidQuery(
                f"the query is longer than {self._settings.max_query_chars} characters", code="query.too_long"
            )
        return _Query(query, filter_for(principal, filters))

    def search(
        self,
        query: str,
        principal: Principal,
        *,
        k: int = 10,
        filters: Mapping[str, str] | None = None,
        transform: bool = True,
    ) -> SearchResult:
        """The ``k`` best chunks ``principal`` may read, with the query transform's trace.

        Raises:
            InvalidQuery: a refused query, or ``k`` below 1.
        """
        checked = self.prepare(query, principal, filters)
        if k < 1:
            raise InvalidQuery("k must be at least 1", code="query.invalid_k")
        with self._telemetry.stage("search", k=k) as stage:
            transformed = self.transform(checked.text, principal.tenant) if transform else None
            trace = self.retrieve(checked.text, transformed, checked.where, k * 2)
            hits = self.top_hits(trace, k, checked.where)
            stage.set(hits=len(hits))
        return SearchResult(hits, transformed)

    def transform(self, question: str, tenant: str) -> QueryTransformTrace | None:
        """The configured query transform of ``question``; None without one or without an LLM."""
        if self._settings.query_transform == "none":
            return None
        completer = self._completer()
        if completer is None:
            return None
        if self._transformer is None:
            self._transformer = QueryTransformer(self._settings, completer)
        with self._telemetry.stage("transform", transform=self._settings.query_transform) as stage:
            trace = self._transformer.transform(question, tenant=tenant)
            if trace is not None:
                stage.set(applied=trace.applied, fallback=trace.fallback)
        return trace

    def retrieve(
        self, question: str, transform: QueryTransformTrace | None, where: IndexFilter, limit: int
    ) -> RetrievalTrace:
        """Hybrid retrieval for the question as the transform shaped it; stages are observed."""
        retriever = self.retriever
        with self._telemetry.stage("retrieve") as stage:
            if transform is None or not transform.applied:
                trace = retriever.retrieve(question, where, limit)
            elif transform.passage is not None:
                lexical = question
                if self._settings.query_transform_hyde_lexical == "question_and_passage":
                    lexical = f"{question}\n{transform.passage}"
                trace = retriever.retrieve(lexical, where, limit, dense_query=transform.passage)
            else:
                trace = retriever.retrieve_many(transform.queries, where, limit)
            # The parts were timed inside the retriever and the backend, one after another.
            offset = 0.0
            for part, ms in trace.timings_ms.items():
                if part != "total":
                    stage.part(part, ms / 1000, offset)
                    offset += ms / 1000
            stage.set(lexical=len(trace.lexical), dense=len(trace.dense), fused=len(trace.fused))
        return trace

    def top_hits(self, trace: RetrievalTrace, k: int, where: IndexFilter) -> list[Hit]:
        """The ``k`` best fused candidates ``where`` may read, near-duplicates collapsed.

        Candidates are read from the store a slice at a time: a few more than ``k`` first,
        more only when collapsing (or a concurrent delete) left fewer than ``k``.
        """
        retriever = self.retriever
        threshold = self._settings.near_duplicate_threshold
        stop = k + max(4, k // 4)
        fetched = retriever.hits(trace, where, stop)
        while True:
            hits = collapse_near_duplicates(fetched, threshold, k, retriever.fingerprints)
            if len(hits) >= k or stop >= len(trace.fused):
                break
            fetched += retriever.hits(trace, where, stop + k, start=stop)
            stop += k
        return hits
