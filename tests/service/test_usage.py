"""Usage in answers (HTTP JSON, SSE, MCP) and the tenant admins' rollup at GET /v1/usage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fathom.domain import Principal
from fathom.llm.testing import Reply, ScriptedLLMServer, documents
from fathom.mcp.tools import ToolContext, tool_named
from tests.service.conftest import Served
from tests.service.shared import postgres_schema

PRICES = {"scripted": (2.0, 8.0)}
COST = (120 * 2.0 + 30 * 8.0) / 1e6


def _answer(request: dict[str, Any]) -> Reply:
    for n, text in documents(request).items():
        if "forty seconds" in text:
            return Reply(text=f"The pump restarts after forty seconds [{n}].", usage=(120, 30))
    return Reply(text="Not found in the documents.")


@pytest.fixture
def llm() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(_answer) as server:
        yield server


def _served(serve, llm: ScriptedLLMServer, **settings: Any) -> Served:
    served: Served = serve(llm="openai:scripted", llm_base_url=llm.url, llm_prices=PRICES, **settings)
    served.upload(served.key(admin=True), text="# Pumps\n\nThe pump restarts after forty seconds.")
    return served


def _ask(served: Served, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    response = served.client.post(
        "/v1/ask", json={"query": "When does the pump restart?"}, headers=headers, **extra
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_answers_carry_their_usage_and_cache_hit(serve, llm):
    served = _served(serve, llm)
    alice = served.key()
    first = _ask(served, alice)
    assert first["usage"] == {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "cost": pytest.approx(COST),
        "cache_hit": False,
    }
    again = _ask(served, alice)
    assert again["usage"] == {
        **first["usage"],
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost": None,
        "cache_hit": True,
    }
    stream = served.client.post(
        "/v1/ask",
        json={"query": "Does the pump restart?"},
        headers={**alice, "Accept": "text/event-stream"},
    )
    done = [block for block in stream.text.split("\n\n") if block.startswith("event: done")]
    usage = json.loads(done[0].split("data: ", 1)[1])["usage"]
    assert usage["total_tokens"] == 150 and usage["cache_hit"] is False


def test_extractive_answers_report_zero_tokens(serve):
    served: Served = serve()
    admin = served.key(admin=True)
    served.upload(admin, text="# Pumps\n\nThe pump restarts after forty seconds.")
    usage = _ask(served, admin)["usage"]
    assert usage == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost": None,
        "cache_hit": False,
    }


def test_the_mcp_ask_tool_returns_usage(serve, llm):
    served = _served(serve, llm)
    tool = tool_named("ask")
    assert tool is not None
    ctx = ToolContext(
        fathom=served.fathom, principal=Principal(tenant="acme", user="carol"), job_queued=lambda: None
    )
    result = asyncio.run(tool.run(ctx, tool.args(question="When does the pump restart?")))
    assert result.usage.total_tokens == 150 and result.usage.cost == pytest.approx(COST)
    assert "usage: 150 tokens" in result.render()
    assert result.model_dump()["usage"]["cache_hit"] is False


def test_tenant_admins_get_a_usage_rollup_per_user_and_per_day(serve, llm):
    served = _served(serve, llm)
    admin = served.key(admin=True)
    alice, bob = served.key(user="alice"), served.key(user="bob")
    _ask(served, alice)
    _ask(served, alice)  # from the cache: counted, no tokens
    _ask(served, bob)  # another reader: another cache scope
    served.client.post(
        "/v1/ask", json={"query": "When does the pump restart?"}, headers=served.key(tenant="globex")
    )

    by_user = served.client.get("/v1/usage", params={"group_by": "user"}, headers=admin).json()
    rows = {row["user"]: row for row in by_user["rows"]}
    assert set(rows) == {"alice", "bob"}, "other tenants' answers are not counted"
    assert rows["alice"]["answers"] == 2 and rows["alice"]["cached"] == 1
    assert rows["alice"]["total_tokens"] == 150 and rows["alice"]["cost"] == pytest.approx(COST)
    assert rows["bob"]["answers"] == 1 and rows["bob"]["total_tokens"] == 150
    assert by_user["total"]["answers"] == 3 and by_user["total"]["prompt_tokens"] == 240

    by_day = served.client.get("/v1/usage", params={"group_by": "day"}, headers=admin).json()
    today = datetime.now(UTC).date().isoformat()
    assert [(row["day"], row["answers"]) for row in by_day["rows"]] == [(today, 3)]

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    later = served.client.get("/v1/usage", params={"since": tomorrow}, headers=admin).json()
    assert later["rows"] == [] and later["total"]["answers"] == 0 and later["total"]["cost"] is None
    assert served.client.get("/v1/usage", headers=alice).status_code == 403
    bad = served.client.get("/v1/usage", params={"since": "last week"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "request.invalid"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.mark.integration
def test_the_usage_rollup_on_postgresql(postgres_url, serve, llm):
    served = _served(serve, llm, database_url=postgres_url)
    admin = served.key(admin=True)
    _ask(served, served.key(user="alice"))
    by_day = served.client.get("/v1/usage", params={"group_by": "day"}, headers=admin).json()
    today = datetime.now(UTC).date().isoformat()
    assert [(r["day"], r["answers"], r["total_tokens"]) for r in by_day["rows"]] == [(today, 1, 150)]
    by_user = served.client.get("/v1/usage", headers=admin).json()
    assert [(r["user"], r["cached"]) for r in by_user["rows"]] == [("alice", 0)]
