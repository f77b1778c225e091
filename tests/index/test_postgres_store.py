"""fathom with ``index_backend = "postgres"``: the search rows commit with the store's transaction.

What a user notices: a document is searchable the moment its ingest returns, on any node, with
no index files; a write that cannot be indexed is not stored either; switching an existing
database to this backend, a rebuild running while documents change, and a new embedder all end
with every stored chunk searchable; a SQLite database or a PostgreSQL without pgvector is refused
with a clear error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fathom import Fathom
from fathom.domain import Principal, TextDocument
from fathom.errors import ConfigError
from fathom.index.postgres import PostgresBackend

pytestmark = [pytest.mark.integration]

DOCS = {
    "otters.md": "# Otters\n\nSea otters hold hands while they sleep so they do not drift apart.",
    "beavers.md": "# Beavers\n\nBeavers build dams from mud and branches across small rivers.",
    "herons.md": "# Herons\n\nHerons stand still in shallow water and spear fish with their beaks.",
}


def _open(home: Path, url: str, embedder: str = "hash:64", **settings: object) -> Fathom:
    return Fathom(home=home, embedder=embedder, database_url=url, index_backend="postgres", **settings)


def _sources(fathom: Fathom, query: str) -> list[str]:
    return [hit.source for hit in fathom.search(query, k=5)]


@pytest.fixture
def fathom(tmp_path: Path, pg_url: str) -> Iterator[Fathom]:
    with _open(tmp_path / "home", pg_url) as instance:
        yield instance


def test_a_document_is_searchable_when_ingest_returns_and_the_home_holds_no_index(
    fathom: Fathom, tmp_path: Path, pg_url: str
):
    for source, text in DOCS.items():
        fathom.ingest_text(text, source=source)
    assert _sources(fathom, "otters sleep holding hands")[0] == "otters.md"
    # Another node on the same database sees it without catching up: its position is the head.
    with _open(tmp_path / "other", pg_url) as other:
        status = other.status()
        assert status.index_positions == {"postgres": status.last_sequence}
        assert _sources(other, "beaver dams")[0] == "beavers.md"
    fathom.delete("beavers.md")
    assert "beavers.md" not in _sources(fathom, "beaver dams")
    status = fathom.status()
    assert status.index_chunks == {"lexical": status.chunks, "dense": status.chunks}
    assert not (tmp_path / "home" / "index").exists() and not (tmp_path / "other" / "index").exists()


def test_a_write_that_cannot_be_indexed_is_not_stored_and_reindex_repairs(tmp_path: Path, pg_url: str):
    with _open(tmp_path / "home", pg_url) as fathom:
        fathom.ingest_text(DOCS["otters.md"], source="otters.md")
    # The embedder changed dimension: the search rows cannot be written, so neither is the document.
    with _open(tmp_path / "home", pg_url, embedder="hash:32") as changed:
        with pytest.raises(ConfigError) as raised:
            changed.ingest_text(DOCS["herons.md"], source="herons.md")
        assert raised.value.code == "index.dimensions_changed"
        assert [doc.source for doc in changed.documents()] == ["otters.md"]
        with pytest.raises(ConfigError):
            changed.search("otters")
        changed.reindex()
        changed.ingest_text(DOCS["herons.md"], source="herons.md")
        assert _sources(changed, "herons spear fish")[0] == "herons.md"
        assert _sources(changed, "otters")[0] == "otters.md"


def test_an_existing_database_switched_to_postgres_catches_up_once(tmp_path: Path, pg_url: str):
    with Fathom(home=tmp_path / "embedded", embedder="hash:64", database_url=pg_url) as embedded:
        embedded.ingest_texts(TextDocument(source=s, text=t) for s, t in DOCS.items())
    with _open(tmp_path / "home", pg_url) as fathom:
        assert _sources(fathom, "herons spear fish")[0] == "herons.md"
        status = fathom.status()
        assert status.index_positions == {"postgres": status.last_sequence}
        assert status.index_chunks["dense"] == status.chunks


def test_writes_during_a_rebuild_are_all_searchable_after_it(fathom: Fathom):
    fathom.ingest_text(DOCS["otters.md"], source="otters.md")
    backend = fathom.backend
    assert isinstance(backend, PostgresBackend)
    backend.clear()  # as a rebuild does first: the position is back at 0
    # A write in the store's transaction while the backend is behind does not move its position
    # (the chunks it skipped would never be indexed): catch-up still replays from 0.
    with fathom.store.engine.begin() as connection:
        backend.write(connection, {}, [], previous_sequence=fathom.store.last_sequence(), sequence=99)
    assert backend.applied_sequence() == 0
    fathom.ingest_text(DOCS["beavers.md"], source="beavers.md")
    assert backend.applied_sequence() == fathom.store.last_sequence()
    assert backend.chunk_ids() == set(fathom.store.all_chunk_ids())
    assert _sources(fathom, "otters sleep")[0] == "otters.md"
    assert _sources(fathom, "beaver dams")[0] == "beavers.md"


def test_ranking_statistics_are_per_tenant(tmp_path: Path, pg_url: str):
    with _open(tmp_path / "acme", pg_url, tenant="acme") as acme:
        for source, text in DOCS.items():
            acme.ingest_text(text, source=source)
        reader = Principal(tenant="acme", user="alice")
        before = [(h.source, h.score) for h in acme.search("otters in the water", principal=reader)]
        with _open(tmp_path / "globex", pg_url, tenant="globex") as globex:
            globex.ingest_texts(
                TextDocument(source=f"t{i}.md", text="Otters otters water water.") for i in range(50)
            )
        after = [(h.source, h.score) for h in acme.search("otters in the water", principal=reader)]
    assert [s for s, _ in before] == [s for s, _ in after]
    assert all(abs(a - b) <= 1e-6 for (_, a), (_, b) in zip(before, after, strict=True))


def test_sqlite_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError) as raised:
        Fathom(home=tmp_path / "home", embedder="hash:64", index_backend="postgres")
    assert raised.value.code == "config.index_backend"


def test_a_postgresql_without_pgvector_is_refused():
    from tests.service.shared import postgres_schema

    with postgres_schema() as url, pytest.raises(ConfigError) as raised:
        PostgresBackend(url)
    assert raised.value.code == "config.pgvector_missing"
