"""Quality on the real seed documents: the golden questions are answered from the right text."""

from __future__ import annotations

import json

import pytest

from fathom import Fathom
from tests.conftest import require_shared

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, embedder) -> Fathom:
    seeds = require_shared("corpus", "seeds")
    fathom = Fathom(home=tmp_path_factory.mktemp("seeds"), embedder=embedder)
    assert fathom.ingest([seeds]).ok
    return fathom


def test_seed_questions_find_their_evidence_and_unanswerable_ones_abstain(seeded: Fathom):
    rows = [
        json.loads(line) for line in require_shared("data", "seeds-qa", "dev.jsonl").read_text().splitlines()
    ]
    found, misses = 0, []
    for row in rows:
        answer = seeded.ask(row["question"])
        if not row["answerable"]:
            assert answer.abstained, f"{row['id']} should abstain, answered: {answer.answer}"
            assert answer.citations == ()
            continue
        hits = seeded.search(row["question"], k=5)
        evidence = row["evidence"]
        if any(evidence in c.quote for c in answer.citations) or any(evidence in h.text for h in hits):
            found += 1
        else:
            misses.append(row["id"])
        for citation in answer.citations:
            text = seeded.document_text(citation.doc_id)
            assert text[citation.start : citation.end] == citation.quote
    answerable = sum(1 for r in rows if r["answerable"])
    assert answerable == 21
    assert found >= 20, f"evidence found for {found}/21; missed {misses}"
