"""The BM25 body carries the title and headings; switching layouts rebuilds the index from the log."""

from __future__ import annotations

from pathlib import Path

from fathom import Fathom
from fathom.domain import Principal
from fathom.index.backend import SearchRequest
from fathom.index.vocabulary import filter_for


def _ingest(fathom: Fathom) -> None:
    # The title is given, not part of the text, so only the title field or the body context has it.
    fathom.ingest_text(
        "Call the on-call engineer when production is down.", source="manual.md", title="Zephyrcorp Handbook"
    )
    fathom.ingest_text("Nothing relevant lives here at all.", source="other.md", title="Other")


def _lexical_sources(fathom: Fathom, query: str) -> list[str]:
    where = filter_for(Principal(tenant=fathom.settings.tenant, admin=True))
    fathom.indexer.catch_up()
    ids = [chunk_id for chunk_id, _ in fathom.backend.search(SearchRequest(query, None, where, 10)).lexical]
    return [chunk.source for chunk in fathom.store.chunks_by_id(ids, where).values()]


def test_title_words_match_the_body_and_a_layout_change_rebuilds(tmp_path: Path):
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:
        _ingest(fathom)
        sources = _lexical_sources(fathom, "zephyrcorp")
        assert len(sources) == 1 and sources[0].endswith("manual.md")

    with Fathom(home=home, embedder="hash:64", lexical_context=False) as plain:
        assert plain.status().index_chunks["lexical"] == plain.status().chunks  # rebuilt, nothing lost
        assert _lexical_sources(plain, "zephyrcorp") == []  # the title is no longer in the body
        assert _lexical_sources(plain, "engineer")[0].endswith("manual.md")

    with Fathom(home=home, embedder="hash:64", lexical_context=False, title_boost=1.0) as boosted:
        assert _lexical_sources(boosted, "zephyrcorp")[0].endswith("manual.md")  # via the title field

    with Fathom(home=home, embedder="hash:64") as again:
        assert _lexical_sources(again, "zephyrcorp")[0].endswith("manual.md")
