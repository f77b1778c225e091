"""The embedded backend (tantivy + usearch per tenant) passes the backend conformance suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from fathom.index.embedded import EmbeddedBackend
from fathom.testing.backend import OpenBackend, SearchBackendConformance


class TestEmbeddedBackend(SearchBackendConformance):
    @pytest.fixture
    def open_backend(self, tmp_path: Path) -> OpenBackend:
        # HNSW from the first vector and small journals, so compaction happens during the tests.
        return lambda name="main": EmbeddedBackend(tmp_path / name, exact_below=0, journal_limit=500)
