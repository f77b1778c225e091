"""/v1/conversations: follow-ups answered in context, owned by their creator, erased on time and on delete."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest

from fathom.embed import Embedder
from fathom.llm.testing import Reply, ScriptedLLMServer, documents
from tests.service.conftest import Served

CLOUDNOVA = (
    "# CloudNova operations guide\n\nCloudNova runs cloud infrastructure for backend teams.\n\n"
    "## Contact\n\nSupport Email: ops@cloudnova.ai\n\nEmergency Phone: +91 9876543244\n"
)
NEUROSTACK = (
    "# NeuroStack AI handbook\n\nNeuroStack AI builds enterprise AI platforms.\n\n"
    "## Contact\n\nSupport Email: ops@neurostack.ai\n\nEmergency Phone: +91 9876543277\n"
)


def _seeded(
    serve: Callable[..., Served], embedder: Embedder, **settings: Any
) -> tuple[Served, dict[str, str]]:
    served = serve(embedder=embedder, **settings)
    headers = served.key(tenant="acme", user="alice")
    served.upload(headers, text=CLOUDNOVA, source="cloudnova.md")
    served.upload(headers, text=NEUROSTACK, source="neurostack.md")
    return served, headers


def _start(served: Served, headers: dict[str, str]) -> str:
    response = served.client.post("/v1/conversations", headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["turns"] == []
    return str(response.json()["conversation_id"])


def _ask(served: Served, headers: dict[str, str], conversation_id: str, question: str, **extra: Any) -> Any:
    response = served.client.post(
        f"/v1/conversations/{conversation_id}/messages", json={"question": question, **extra}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_follow_up_finds_the_same_companys_phone(serve: Callable[..., Served], embedder: Embedder) -> None:
    served, headers = _seeded(serve, embedder)
    conversation_id = _start(served, headers)
    first = _ask(served, headers, conversation_id, "What is CloudNova's support email?")
    assert "ops@cloudnova.ai" in first["answer"] and first["rewrite"]["method"] == "unchanged"
    second = _ask(served, headers, conversation_id, "And its emergency phone?")
    assert second["rewrite"] == {
        "question": "And its emergency phone?",
        "standalone": "CloudNova's emergency phone?",
        "method": "carry_over",
        "carried": ["CloudNova"],
        "model": None,
        "prompt_version": None,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cost": None},
        "fallback": None,
    }
    assert "9876543244" in second["answer"] and "9876543277" not in second["answer"]
    assert second["conversation_id"] == conversation_id and second["answer_id"]
    turns = served.client.get(f"/v1/conversations/{conversation_id}", headers=headers).json()["turns"]
    assert [(t["n"], t["question"], t["standalone_question"]) for t in turns] == [
        (1, "What is CloudNova's support email?", "What is CloudNova's support email?"),
        (2, "And its emergency phone?", "CloudNova's emergency phone?"),
    ]
    assert any("9876543244" in c["quote"] for c in turns[1]["citations"])
    assert not any(t["redacted"] for t in turns)


def test_messages_stream_as_ask_does(serve: Callable[..., Served], embedder: Embedder) -> None:
    served, headers = _seeded(serve, embedder)
    conversation_id = _start(served, headers)
    _ask(served, headers, conversation_id, "What is CloudNova's support email?")
    response = served.client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"question": "And its emergency phone?"},
        headers={**headers, "Accept": "text/event-stream"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [
        (
            block.split("\n")[0].removeprefix("event: "),
            json.loads(block.split("\n")[1].removeprefix("data: ")),
        )
        for block in response.text.strip().split("\n\n")
    ]
    names = [name for name, _data in events]
    assert names[-2:] == ["citations", "done"] and set(names[:-2]) == {"delta"}
    done = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "delta").strip() == done["answer"].strip()
    assert done["rewrite"]["standalone"] == "CloudNova's emergency phone?" and "9876543244" in done["answer"]
    turns = served.client.get(f"/v1/conversations/{conversation_id}", headers=headers).json()["turns"]
    assert len(turns) == 2


def test_only_the_creator_sees_a_conversation(serve: Callable[..., Served], embedder: Embedder) -> None:
    served, alice = _seeded(serve, embedder)
    conversation_id = _start(served, alice)
    _ask(served, alice, conversation_id, "What is CloudNova's support email?")
    others = {
        "same user, another key": served.key(tenant="acme", user="alice"),
        "another user": served.key(tenant="acme", user="bob"),
        "the tenant's admin": served.key(tenant="acme", user="root", admin=True),
        "another tenant": served.key(tenant="other", user="alice"),
        "a key without a user": served.key(tenant="acme", user=None),
    }
    for who, headers in others.items():
        url = f"/v1/conversations/{conversation_id}"
        expected = 200 if who == "same user, another key" else 404
        assert served.client.get(url, headers=headers).status_code == expected, who
        if expected == 404:
            message = served.client.post(f"{url}/messages", json={"question": "hi?"}, headers=headers)
            assert (
                message.status_code == 404 and message.json()["error"]["code"] == "conversation.not_found"
            ), who
            assert served.client.delete(url, headers=headers).status_code == 404, who
    # A key without a user owns what it created, and nothing another key without a user created.
    keyless = others["a key without a user"]
    own = _start(served, keyless)
    assert served.client.get(f"/v1/conversations/{own}", headers=keyless).status_code == 200
    assert served.client.get(f"/v1/conversations/{own}", headers=served.key(user=None)).status_code == 404
    assert served.client.get(f"/v1/conversations/{conversation_id}", headers=alice).status_code == 200


def test_deleting_a_conversation_deletes_its_turns(serve: Callable[..., Served], embedder: Embedder) -> None:
    served, headers = _seeded(serve, embedder)
    conversation_id = _start(served, headers)
    _ask(served, headers, conversation_id, "What is CloudNova's support email?")
    response = served.client.delete(f"/v1/conversations/{conversation_id}", headers=headers)
    assert response.json() == {"conversation_id": conversation_id, "deleted": True}
    assert served.client.get(f"/v1/conversations/{conversation_id}", headers=headers).status_code == 404
    db = sqlite3.connect(served.fathom.home / "fathom.db")
    assert db.execute("SELECT count(*) FROM conversation_turns").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM conversation_turn_documents").fetchone() == (0,)


def test_deleting_a_cited_document_erases_the_answers_that_quote_it(
    serve: Callable[..., Served], embedder: Embedder
) -> None:
    served, headers = _seeded(serve, embedder)
    conversation_id = _start(served, headers)
    answer = _ask(served, headers, conversation_id, "What is CloudNova's support email?")
    doc_id = answer["citations"][0]["doc_id"]
    admin = served.key(tenant="acme", user="root", admin=True)
    assert served.client.delete(f"/v1/documents/{doc_id}", headers=admin).status_code == 200
    turn = served.client.get(f"/v1/conversations/{conversation_id}", headers=headers).json()["turns"][0]
    assert (turn["redacted"], turn["answer"], turn["citations"]) == (True, "", [])
    assert turn["question"] == "What is CloudNova's support email?"
    db = sqlite3.connect(served.fathom.home / "fathom.db")
    stored = " ".join(str(v) for row in db.execute("SELECT * FROM conversation_turns") for v in row)
    assert "ops@cloudnova.ai" not in stored


def test_a_turn_citing_a_document_the_reader_lost_is_redacted(
    serve: Callable[..., Served], embedder: Embedder
) -> None:
    served = serve(embedder=embedder)
    alice = served.key(tenant="acme", user="alice")
    served.upload(alice, text=CLOUDNOVA, source="cloudnova.md", acl={"users": ["alice"]})
    conversation_id = _start(served, alice)
    assert (
        "ops@cloudnova.ai"
        in _ask(served, alice, conversation_id, "What is CloudNova's support email?")["answer"]
    )
    served.upload(
        alice, text=CLOUDNOVA, source="cloudnova.md", acl={"users": ["carol"]}
    )  # alice loses access
    turn = served.client.get(f"/v1/conversations/{conversation_id}", headers=alice).json()["turns"][0]
    assert (turn["redacted"], turn["answer"], turn["citations"]) == (True, "", [])


def test_idle_conversations_are_deleted_after_the_retention(
    serve: Callable[..., Served], embedder: Embedder
) -> None:
    served, headers = _seeded(serve, embedder, conversation_retention_days=1.5 / 86400)
    conversation_id = _start(served, headers)
    _ask(served, headers, conversation_id, "What is CloudNova's support email?")
    assert served.client.get(f"/v1/conversations/{conversation_id}", headers=headers).status_code == 200
    time.sleep(1.6)
    assert served.client.get(f"/v1/conversations/{conversation_id}", headers=headers).status_code == 404
    _start(served, headers)  # starting one purges the tenant's expired conversations
    db = sqlite3.connect(served.fathom.home / "fathom.db")
    assert db.execute("SELECT id FROM conversations WHERE id = ?", (conversation_id,)).fetchall() == []
    assert db.execute("SELECT count(*) FROM conversation_turns").fetchone() == (0,)


def test_ask_still_refuses_a_history_field(serve: Callable[..., Served]) -> None:
    served = serve()
    response = served.client.post(
        "/v1/ask", json={"query": "x?", "history": ["y"]}, headers=served.key(tenant="acme", user="alice")
    )
    assert response.status_code == 422


def test_with_an_llm_the_follow_up_is_rewritten_by_the_model(
    serve: Callable[..., Served], embedder: Embedder
) -> None:
    rewrites: list[str] = []

    def script(request: dict[str, Any]) -> Reply:
        if request["messages"][0]["content"].startswith("You rewrite the last question"):
            rewrites.append(request["messages"][1]["content"])
            return Reply(text="What is the emergency phone number of CloudNova?")
        docs = documents(request)
        n, text = next((n, t) for n, t in docs.items() if "9876543244" in t or "ops@cloudnova.ai" in t)
        line = next(line for line in text.splitlines() if "Phone" in line or "Email" in line)
        return Reply(text=f"{line} [{n}]")

    with ScriptedLLMServer(script) as server:
        served, headers = _seeded(
            serve,
            embedder,
            llm="openai:scripted",
            llm_base_url=server.url,
            llm_retries=0,
            answer_cache_size=0,
        )
        conversation_id = _start(served, headers)
        _ask(served, headers, conversation_id, "What is CloudNova's support email?")
        second = _ask(served, headers, conversation_id, "And its emergency phone?")
    assert second["rewrite"]["method"] == "llm" and second["rewrite"]["model"] == "openai:scripted"
    assert second["rewrite"]["standalone"] == "What is the emergency phone number of CloudNova?"
    assert second["rewrite"]["prompt_version"] == "followup-v1"
    assert len(rewrites) == 1 and "User: What is CloudNova's support email?" in rewrites[0]
    assert "9876543244" in second["answer"]


@pytest.mark.parametrize("path", ["/v1/conversations", "/v1/conversations/{conversation_id}/messages"])
def test_the_schema_documents_the_conversation_routes(serve: Callable[..., Served], path: str) -> None:
    schema = serve().client.get("/openapi.json").json()
    assert path in schema["paths"]
    assert "MessageOut" in schema["components"]["schemas"]
