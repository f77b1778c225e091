"""Chunk fingerprints and pages are stored at ingest, so search collapses near-duplicates
without hashing its hits and numbers pages without reading document metadata; a store
written before they existed gets them when it is upgraded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

import fathom.retrieve.dedupe as dedupe
from fathom import Fathom
from fathom.ingest.fingerprint import fingerprint
from tests.files import make_pdf

BOILERPLATE = (
    "Every employee must badge in at the north entrance, keep the visitor log current, "
    "escort guests past the server room, and report a lost badge to security within one hour."
)


def _stored_marks(fathom: Fathom) -> dict[str, np.ndarray | None]:
    with fathom.store.connection() as conn:
        rows = conn.execute(text("SELECT text, minhash FROM chunks")).all()
    return {t: np.frombuffer(m, dtype=np.uint64) if m else None for t, m in rows}


def test_search_collapses_copies_with_the_fingerprints_stored_at_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as writer:
        for site in ("Leeds", "Porto", "Osaka"):
            assert writer.ingest_text(f"{BOILERPLATE}", source=f"mem://badges-{site}").status == "added"
        marks = _stored_marks(writer)
    assert marks and all(m is not None and np.array_equal(m, fingerprint(t)) for t, m in marks.items())

    def no_hashing(text: str, **_: object) -> np.ndarray:
        raise AssertionError("search hashed a hit whose fingerprint is stored")

    monkeypatch.setattr(dedupe, "fingerprint", no_hashing)
    with Fathom(home=home, embedder="hash:64") as reader:  # a fresh process: nothing cached
        hits = reader.search("badge visitor log security", k=3)
    assert len(hits) == 1
    assert {hits[0].source, *hits[0].also_in} == {f"mem://badges-{s}" for s in ("Leeds", "Porto", "Osaka")}


def test_upgrading_an_older_store_fingerprints_and_pages_its_chunks(tmp_path: Path):
    home = tmp_path / "home"
    pdf = make_pdf(
        tmp_path / "harbour.pdf",
        ["Lanterns guide ships into the harbour at night.", "Dredging keeps the channel deep in spring."],
    )
    with Fathom(home=home, embedder="hash:64") as old:
        assert old.ingest([pdf]).ok
        old.ingest_text("The ferry to the island leaves at seven every morning.", source="mem://b")
        before = {h.text: h.page for h in old.search("dredging channel lanterns harbour", k=5)}
        assert sorted(p for p in before.values() if p is not None) == [1, 2]
        config = Config()
        config.set_main_option("script_location", "fathom.store:migrations")
        with old.store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002_service")
            assert "minhash" not in {
                row[1] for row in connection.execute(text("PRAGMA table_info(chunks)")).all()
            }
    with Fathom(home=home, embedder="hash:64") as upgraded:
        marks = _stored_marks(upgraded)
        assert len(marks) == 3
        assert all(m is not None and np.array_equal(m, fingerprint(t)) for t, m in marks.items())
        assert upgraded.search("ferry island", k=1)[0].source == "mem://b"
        after = {h.text: h.page for h in upgraded.search("dredging channel lanterns harbour", k=5)}
        assert after == before
