"""The passage-in-context route the web page opens citations with, and the answer fields it shows
(groundedness, per-sentence support, notes, the answerer)."""

from __future__ import annotations

import pytest

from tests.files import RUNBOOK


@pytest.fixture
def served(serve, embedder):
    served = serve(embedder=embedder, rate_limit_per_minute=0)
    return served


def _cited(served, headers):
    response = served.client.post(
        "/v1/ask", json={"query": "How often are signing keys rotated?"}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body["abstained"] and body["citations"], body
    return body


def test_a_citation_opens_in_context_with_its_quote_and_neighbours(served):
    alice = served.key()
    document = served.upload(alice, text=RUNBOOK, source="ops/runbook.md", title="Operations runbook")
    body = _cited(served, alice)
    # The page shows confidence, the answerer, notes and per-sentence support.
    assert body["groundedness"] == 1.0 and body["model"] == "extractive" and body["notes"] == []
    assert body["sentences"] and all(s["supported"] for s in body["sentences"])
    citation = next(c for c in body["citations"] if "ninety days" in c["quote"])
    assert citation["doc_id"] == document["document_id"]

    response = served.client.get(
        f"/v1/documents/{citation['doc_id']}/passage",
        params={"start": citation["start"], "end": citation["end"]},
        headers=alice,
    )
    assert response.status_code == 200, response.text
    passage = response.json()
    assert passage["title"] == "Operations runbook" and passage["source"] == "ops/runbook.md"
    assert passage["heading_path"][-1] == "Key rotation"
    assert passage["page"] is None
    assert passage["start"] <= passage["quote_start"] < passage["quote_end"] <= passage["end"]
    offset = passage["start"]
    assert (
        passage["text"][passage["quote_start"] - offset : passage["quote_end"] - offset] == citation["quote"]
    )
    assert RUNBOOK[passage["start"] : passage["end"]] == passage["text"]

    narrow = served.client.get(
        f"/v1/documents/{citation['doc_id']}/passage",
        params={"start": citation["start"], "end": citation["end"], "neighbours": 0},
        headers=alice,
    ).json()
    assert len(narrow["text"]) <= len(passage["text"])
    assert citation["quote"] in narrow["text"]


def test_a_passage_is_a_404_for_anyone_who_may_not_read_its_document(served):
    alice = served.key()
    bob = served.key(user="bob")
    globex_admin = served.key(tenant="globex", user="alice", admin=True)
    document = served.upload(alice, text=RUNBOOK, source="ops/runbook.md", acl={"users": ["alice"]})
    path = f"/v1/documents/{document['document_id']}/passage"
    params = {"start": 0, "end": 10}
    assert served.client.get(path, params=params, headers=alice).status_code == 200
    for headers in (bob, globex_admin):
        response = served.client.get(path, params=params, headers=headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "document.not_found"
        assert "runbook" not in response.text.lower()
    assert served.client.get(path, params=params).status_code == 401


def test_passage_offsets_are_checked(served):
    alice = served.key()
    document = served.upload(alice, text=RUNBOOK, source="ops/runbook.md")
    path = f"/v1/documents/{document['document_id']}/passage"
    backwards = served.client.get(path, params={"start": 20, "end": 10}, headers=alice)
    assert backwards.status_code == 404 and backwards.json()["error"]["code"] == "passage.invalid_range"
    outside = served.client.get(path, params={"start": 10_000, "end": 10_010}, headers=alice)
    assert outside.status_code == 404 and outside.json()["error"]["code"] == "passage.not_found"
    negative = served.client.get(path, params={"start": -1, "end": 10}, headers=alice)
    assert negative.status_code == 422 and negative.json()["error"]["code"] == "request.invalid"
