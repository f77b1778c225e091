"""The PostgreSQL backend (pgvector + BM25 as sparsevec) passes the backend conformance suite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fathom.index.postgres import PostgresBackend
from fathom.testing.backend import OpenBackend, SearchBackendConformance
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
