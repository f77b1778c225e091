"""Security item 2: the answer cache must follow ACL changes.

With an LLM configured, verified answers are cached. After an admin restricts a document, a
principal who lost access must not get the cached answer quoting it (REST and MCP ``ask``), and any
ACL change of a cited document must send the next question to the LLM again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from fathom.answer import cache as answer_cache
from fathom.domain import Answer, Citation, Principal
from fathom.llm.testing import Reply, ScriptedLLMServer, documents
from tests.security.conftest import Served, call_tool

HANDBOOK = """# Support handbook

The support desk answers tickets within four business hours. Urgent tickets are escalated to the
on-call engineer after thirty minutes.
"""
QUOTE = "four business hours"
QUESTION = "How quickly does the support desk answer tickets?"


def _echo(request: dict[str, Any]) -> Reply:
    """Quote the fenced sentence about business hours with its citation, or say it is not there."""
    for n, text in documents(request).items():
        for sentence in text.replace("\n", " ").split(". "):
            if "business hours" in sentence:
                return Reply(text=f"{sentence.strip().rstrip('.')}. [{n}]")
    return Reply(text="Not in the documents.")


@pytest.fixture
def llm() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(_echo) as server:
        yield server


@pytest.fixture
def served(serve: Callable[..., Served], llm: ScriptedLLMServer) -> Served:
    return serve(
        llm="openai:scripted-model",
        llm_base_url=llm.url,
        llm_api_key="sk-test-secret",
        llm_backoff=0.01,
        llm_first_token_timeout=5.0,
        llm_total_timeout=10.0,
        rate_limit_per_minute=0,
    )


def _ask(served: Served, headers: dict[str, str]) -> dict[str, Any]:
    response = served.client.post("/v1/ask", json={"query": QUESTION}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _restrict(served: Served, admin: dict[str, str], acl: dict[str, list[str]]) -> None:
    """The admin uploads the same text again under the same source with a new ACL."""
    served.upload(admin, text=HANDBOOK, source="handbook.md", acl=acl)


def test_rest_ask_gives_no_cached_quote_to_a_principal_who_lost_access(
    served: Served, llm: ScriptedLLMServer
):
    admin = served.key(user="root", admin=True)
    bob = served.key(user="bob")
    doc_id = served.upload(admin, text=HANDBOOK, source="handbook.md")["document_id"]
    first = _ask(served, bob)
    assert QUOTE in first["answer"] and {c["doc_id"] for c in first["citations"]} == {doc_id}
    assert _ask(served, bob)["answer"] == first["answer"]
    assert len(llm.requests) == 1  # the second answer came from the cache

    _restrict(served, admin, {"users": ["alice"]})
    after = _ask(served, bob)
    assert QUOTE not in after["answer"], "the cache served a quote of a document bob may no longer read"
    assert doc_id not in {c["doc_id"] for c in after["citations"]}
    assert QUOTE not in str(after)


def test_any_acl_change_of_a_cited_document_sends_the_question_to_the_llm_again(
    served: Served, llm: ScriptedLLMServer
):
    admin = served.key(user="root", admin=True)
    carol = served.key(user="carol", groups=("support",))
    served.upload(admin, text=HANDBOOK, source="handbook.md", acl={"groups": ["support"]})
    _ask(served, carol)
    _ask(served, carol)
    assert len(llm.requests) == 1

    _restrict(served, admin, {"groups": ["support"], "users": ["dave"]})  # carol still reads it
    after = _ask(served, carol)
    assert len(llm.requests) == 2, "an ACL change of a cited document must invalidate cached answers"
    assert QUOTE in after["answer"]


def test_mcp_ask_gives_no_cached_quote_to_a_principal_who_lost_access(served: Served, llm: ScriptedLLMServer):
    admin = served.key(user="root", admin=True)
    bob = served.key(user="bob")
    doc_id = served.upload(admin, text=HANDBOOK, source="handbook.md")["document_id"]
    first = call_tool(served.client, bob, "ask", {"question": QUESTION})
    assert not first["isError"]
    assert QUOTE in first["structuredContent"]["answer"]
    call_tool(served.client, bob, "ask", {"question": QUESTION})
    assert len(llm.requests) == 1

    _restrict(served, admin, {"users": ["alice"]})
    after = call_tool(served.client, bob, "ask", {"question": QUESTION})
    assert not after["isError"]
    assert QUOTE not in str(after), "MCP ask served a cached quote of a document bob may no longer read"
    assert doc_id not in {c["doc_id"] for c in after["structuredContent"]["citations"]}


def test_a_hit_is_refused_to_a_reader_who_may_not_read_a_cited_document_whatever_the_scope():
    """Defence in depth: even an entry filed under a wrong scope never reaches a non-reader."""
    version = answer_cache.DocumentVersion("hash", ("alice",), ())
    cache = answer_cache.AnswerCache(8, 0.9, lambda _tenant, _doc: version)
    citation = Citation(n=1, doc_id="d1", chunk_id=1, source="s", title="t", start=0, end=4, quote=QUOTE)
    answer = Answer(f"{QUOTE} [1]", (citation,), False, ())
    scope = ("acme", "*")
    vector = np.ones(4, dtype=np.float32) / 2
    cache.put(scope, QUESTION, vector, answer)
    alice = Principal(tenant="acme", user="alice")
    bob = Principal(tenant="acme", user="bob")
    assert cache.get(scope, QUESTION, vector, reader=bob) is None
    hit = cache.get(scope, QUESTION, vector, reader=alice)
    assert hit is not None and hit.cached
