"""The PostgreSQL backend (pgvector + BM25 as sparsevec) passes the backend conformance suite."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from fathom.domain import Principal, contextual_text
from fathom.index.backend import SearchRequest
from fathom.index.lexical import analyze
from fathom.index.postgres import PostgresBackend
from fathom.index.vocabulary import filter_for
from fathom.testing.backend import DIM, OpenBackend, SearchBackendConformance, make_chunk
from tests.pg import fresh_database

pytestmark = [pytest.mark.integration]


class TestPostgresBackend(SearchBackendConformance):
    @pytest.fixture
    def open_backend(self, local_postgres: Any) -> Iterator[OpenBackend]:
        # One database per name, so "the same name reopens the same data".
        databases: dict[str, str] = {}
        opened: list[Any] = []

        def open_named(name: str = "main") -> PostgresBackend:
            if name not in databases:
                context = fresh_database(local_postgres)
                databases[name] = context.__enter__()
                opened.append(context)
            return PostgresBackend(databases[name])

        yield open_named
        for context in reversed(opened):
            context.__exit__(None, None, None)

    @pytest.mark.slow
    def test_dense_recall_at_10_against_exact_search(self, backend: Any) -> None:
        # 20k HNSW inserts take about a minute on two shared cores.
        super().test_dense_recall_at_10_against_exact_search(backend)


def test_bm25_scores_equal_a_reference_computation(pg_url: str) -> None:
    """PostgreSQL's sparsevec inner product gives textbook BM25 (Lucene's idf, k1 1.2, b 0.75)."""
    texts = [
        "the otter floats on its back and cracks shells",
        "otters hold hands while they sleep on the water",
        "beavers build dams and lodges from mud",
        "the heron waits in shallow water for fish",
        "a river otter and a sea otter are different otters",
    ]
    rng = np.random.default_rng(0)
    chunks = [make_chunk(i + 1, text, rng.standard_normal(DIM)) for i, text in enumerate(texts)]
    backend = PostgresBackend(pg_url, common_terms=1.0)
    try:
        backend.apply({}, chunks, 1)
        where = filter_for(Principal(tenant="acme", admin=True))
        query = "otters sleeping on the water"
        found = backend.search(SearchRequest(text=query, vector=None, where=where, depth=10)).lexical
    finally:
        backend.close()
    bodies = [analyze(contextual_text(c.title, c.heading_path, c.text)) for c in chunks]
    average = sum(len(b) for b in bodies) / len(bodies)
    expected: dict[int, float] = {}
    for chunk, body in zip(chunks, bodies, strict=True):
        score = 0.0
        for term in analyze(query):
            tf = body.count(term)
            df = sum(term in other for other in bodies)
            if tf and df:
                idf = math.log(1 + (len(bodies) - df + 0.5) / (df + 0.5))
                score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(body) / average))
        if score:
            expected[chunk.chunk_id] = score
    assert [chunk_id for chunk_id, _ in found] == sorted(expected, key=lambda c: -expected[c])
    for chunk_id, score in found:
        assert score == pytest.approx(expected[chunk_id], rel=1e-5)


def test_a_reader_who_cannot_see_the_distinctive_chunks_still_gets_bm25_results(pg_url: str) -> None:
    """Common query terms find no candidates on their own; when the distinctive ones yield too few
    chunks the reader may see, every chunk holding any query term is scored."""
    rng = np.random.default_rng(1)
    chunks = [make_chunk(i + 1, f"quarterly report number {i}", rng.standard_normal(DIM)) for i in range(100)]
    hidden = ("secret",)
    for i in range(2):
        chunks.append(make_chunk(200 + i, "the zebra report", rng.standard_normal(DIM), groups=hidden))
    backend = PostgresBackend(pg_url)
    try:
        backend.apply({}, chunks, 1)
        reader = filter_for(Principal(tenant="acme", user="carol"))
        request = SearchRequest(text="zebra report", vector=None, where=reader, depth=10)
        found = backend.search(request).lexical
        insider = filter_for(Principal(tenant="acme", user="dave", groups=("secret",)))
        top = backend.search(SearchRequest(text="zebra report", vector=None, where=insider, depth=10)).lexical
    finally:
        backend.close()
    assert len(found) == 10 and all(chunk_id <= 100 for chunk_id, _ in found)
    assert {chunk_id for chunk_id, _ in top[:2]} == {200, 201}
