"""The Python API end to end, with the real packaged model and real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fathom import Fathom, InvalidQuery, NotFound
from tests.files import make_docx, make_pdf

pytestmark = pytest.mark.integration


def _corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pets.md").write_text(
        "# Pet care\n\n## Cats\n\nCats sleep for about sixteen hours a day.\n\n"
        "## Dogs\n\nDogs need a walk at least twice a day.\n",
        encoding="utf-8",
    )
    (root / "garden.txt").write_text(
        "Garden Handbook\n\nWatering:\nTomatoes need deep watering twice a week in summer.\n",
        encoding="utf-8",
    )
    (root / "page.html").write_text(
        "<html><head><title>Bikes</title></head><body><h1>Bicycle repair</h1>"
        "<p>To fix a flat tyre, remove the inner tube and patch the puncture.</p></body></html>",
        encoding="utf-8",
    )
    make_pdf(root / "report.pdf", ["Annual report", "The observatory recorded 412 meteors in August."])
    make_docx(
        root / "policy.docx",
        title="Travel policy",
        sections={"Trains": ["Employees travel second class on trains shorter than four hours."]},
    )
    return root


def test_ingest_search_and_exact_offsets(fathom: Fathom, tmp_path: Path):
    corpus = _corpus(tmp_path / "docs")
    report = fathom.ingest([corpus])
    assert report.ok
    assert report.count("added") == 5
    hits = fathom.search("how many meteors were recorded", k=3)
    assert hits[0].source == str((corpus / "report.pdf").resolve())
    for hit in hits:
        text = fathom.document_text(hit.doc_id)
        assert text[hit.start : hit.end] == hit.text
    fields = set(hits[0].to_dict())
    assert {"doc_id", "chunk_id", "source", "title", "score", "text", "start", "end"} <= fields
    # Every format is searchable.
    for question, name in [
        ("flat tyre inner tube", "page.html"),
        ("second class train travel", "policy.docx"),
        ("watering tomatoes", "garden.txt"),
        ("how long do cats sleep", "pets.md"),
    ]:
        assert fathom.search(question, k=1)[0].source.endswith(name), question


def test_unchanged_files_are_skipped_and_changed_files_replaced(fathom: Fathom, tmp_path: Path):
    corpus = _corpus(tmp_path / "docs")
    fathom.ingest([corpus])
    chunks_before = fathom.status().chunks
    again = fathom.ingest([corpus])
    assert again.count("unchanged") == 5
    assert fathom.status().last_sequence == fathom.status().index_positions["embedded"]
    assert fathom.status().chunks == chunks_before

    (corpus / "pets.md").write_text("# Pet care\n\n## Parrots\n\nParrots can live for eighty years.\n")
    changed = fathom.ingest([corpus])
    assert changed.count("updated") == 1 and changed.count("unchanged") == 4
    top = fathom.search("how long do parrots live", k=1)[0]
    assert "eighty years" in top.text
    assert all("sixteen hours" not in h.text for h in fathom.search("cats sleep hours", k=10))


def test_delete_and_sync_mirror_a_folder(fathom: Fathom, tmp_path: Path):
    corpus = _corpus(tmp_path / "docs")
    fathom.ingest([corpus])
    doc_id = fathom.delete(str(corpus / "garden.txt"))
    assert all(h.doc_id != doc_id for h in fathom.search("watering tomatoes", k=10))
    with pytest.raises(NotFound):
        fathom.delete(str(corpus / "garden.txt"))

    (corpus / "report.pdf").unlink()
    (corpus / "new.md").write_text("# Bees\n\nBees communicate by dancing.\n")
    report = fathom.sync(corpus)
    assert report.count("deleted") == 1
    assert report.count("added") == 2  # new.md, and garden.txt again
    sources = {Path(d.source).name for d in fathom.documents()}
    assert sources == {"pets.md", "garden.txt", "page.html", "policy.docx", "new.md"}
    assert fathom.search("bees dancing", k=1)[0].source.endswith("new.md")
    status = fathom.status()
    assert status.index_chunks == {"lexical": status.chunks, "dense": status.chunks}


def test_filters_restrict_results_before_ranking(fathom: Fathom, tmp_path: Path):
    corpus = _corpus(tmp_path / "docs")
    fathom.ingest([corpus])
    hits = fathom.search("meteors observatory", k=5, filters={"filename": "pets.md"})
    assert hits and all(h.source.endswith("pets.md") for h in hits)
    assert fathom.search("meteors", k=5, filters={"filename": "nothing.md"}) == []


def test_ask_quotes_documents_exactly_and_abstains_when_unsupported(fathom: Fathom, tmp_path: Path):
    fathom.ingest([_corpus(tmp_path / "docs")])
    answer = fathom.ask("How many meteors did the observatory record in August?")
    assert not answer.abstained
    assert "412" in answer.answer
    assert "[1]" in answer.answer
    for citation in answer.citations:
        assert fathom.document_text(citation.doc_id)[citation.start : citation.end] == citation.quote
        assert f"[{citation.n}]" in answer.answer
    unsupported = fathom.ask("What is the capital city of Mongolia?")
    assert unsupported.abstained
    assert unsupported.citations == ()
    assert "could not find" in unsupported.answer


def test_reindex_rebuilds_the_same_results(fathom: Fathom, tmp_path: Path):
    fathom.ingest([_corpus(tmp_path / "docs")])
    before = [(h.chunk_id, h.score) for h in fathom.search("bicycle puncture repair", k=5)]
    fathom.reindex()
    after = [(h.chunk_id, h.score) for h in fathom.search("bicycle puncture repair", k=5)]
    assert after == before
    status = fathom.status()
    assert status.index_positions == {"embedded": status.last_sequence}


def test_invalid_queries_are_refused(fathom: Fathom):
    with pytest.raises(InvalidQuery) as empty:
        fathom.search("   ")
    assert empty.value.code == "query.empty"
    with pytest.raises(InvalidQuery) as long:
        fathom.ask("x" * 5000)
    assert long.value.code == "query.too_long"


def test_a_second_instance_sees_the_first_ones_writes(tmp_path: Path, embedder):
    home = tmp_path / "home"
    with Fathom(home=home, embedder=embedder) as writer, Fathom(home=home, embedder=embedder) as reader:
        assert reader.search("anything at all", k=3) == []
        writer.ingest_text("# Otters\n\nSea otters hold hands while they sleep.", source="otters")
        assert reader.search("otters holding hands", k=1)[0].source == "otters"
