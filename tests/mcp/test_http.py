"""/mcp under `fathom serve`: API keys, ACLs within a tenant, limits, and the error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from mcp.client.streamable_http import streamable_http_client

from fathom import Fathom
from fathom.service import create_app
from fathom.service.limits import LocalBuckets
from tests.mcp.conftest import StreamOpener, Transports, World, dumps, open_client

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# What an MCP client sends first; raw, to look at the HTTP answer itself.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def _statuses(exc: BaseException) -> list[int]:
    """HTTP statuses of the httpx errors inside an exception (group)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return [exc.response.status_code]
    if isinstance(exc, BaseExceptionGroup):
        return [status for inner in exc.exceptions for status in _statuses(inner)]
    return _statuses(exc.__cause__) if exc.__cause__ is not None else []


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "auth.missing_key"),
        ({"Authorization": "Bearer fth_000000000000_not-a-real-key"}, "auth.invalid_key"),
        ({"Authorization": "Bearer something-else"}, "auth.invalid_key"),
        ({"X-API-Key": "fth_000000000000_not-a-real-key"}, "auth.invalid_key"),
    ],
)
def test_missing_or_bad_key_gets_401_with_the_service_error_body(
    transports: Transports, headers: dict[str, str], code: str
):
    response = httpx.post(transports.url, json=INITIALIZE, headers={**ACCEPT, **headers}, timeout=30)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["x-request-id"]


def test_the_official_client_is_refused_without_a_valid_key(transports: Transports):
    url = transports.url

    def opener(key: str | None) -> StreamOpener:
        headers = {"Authorization": f"Bearer {key}"} if key else {}

        @asynccontextmanager
        async def open_streams() -> AsyncIterator[tuple[Any, ...]]:
            async with (
                httpx.AsyncClient(headers=headers, timeout=30) as http,
                streamable_http_client(url, http_client=http) as streams,
            ):
                yield streams

        return open_streams

    for key in (None, "fth_000000000000_not-a-real-key"):
        with ExitStack() as stack, pytest.raises((BaseExceptionGroup, httpx.HTTPStatusError)) as raised:
            open_client(stack, opener(key))
        assert 401 in _statuses(raised.value), raised.value


def test_the_key_header_form_of_the_rest_api_works_too(transports: Transports, world: World):
    response = httpx.post(
        transports.url, json=INITIALIZE, headers={**ACCEPT, "X-API-Key": world.keys["acme"]}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"]["serverInfo"]["name"] == "fathom"


def test_acls_within_a_tenant_hold_for_every_tool(transports: Transports, world: World):
    alice = transports.client("http", "acme")  # in group eng
    bob = transports.client("http", "acme-bob")  # in no group
    failover = world.doc_ids["failover.md"]
    question = "How do we promote the replica in a database failover?"

    assert alice.ok("search", {"query": question})["hits"][0]["doc_id"] == failover
    assert "acmeengmarker" in dumps(alice.ok("ask", {"question": question}))
    assert alice.ok("get_document", {"document_id": failover})["document"]["doc_id"] == failover

    seen = [
        dumps(bob.ok("search", {"query": question, "k": 50})["hits"]),
        dumps(bob.ok("ask", {"question": question, "k": 50})),
        dumps(bob.ok("list_documents", {"limit": 500})),
    ]
    assert "acmeengmarker" not in "".join(seen) and failover not in "".join(seen)
    assert bob.error("get_document", {"document_id": failover})["code"] == "document.not_found"
    # Bob still reads his tenant's public documents.
    assert "acmekettlemarker" in dumps(bob.ok("search", {"query": "descale the kettle"})["hits"])


def test_ingest_text_honours_the_acl_it_is_given(transports: Transports):
    alice = transports.client("http", "acme")
    bob = transports.client("http", "acme-bob")
    stored = alice.ok(
        "ingest_text",
        {
            "text": "# Pager rota\n\nThe on-call pager passes to the next engineer every Monday at nine; "
            "the rota word is acmepagermarker.\n",
            "source": "eng/pager.md",
            "acl_groups": ["eng"],
        },
    )
    assert stored["status"] == "succeeded" and stored["chunks"] >= 1
    question = {"query": "When does the on-call pager pass to the next engineer?"}
    assert alice.ok("search", question)["hits"][0]["doc_id"] == stored["document_id"]
    assert "acmepagermarker" not in dumps(bob.ok("search", question)["hits"])
    assert bob.error("get_document", {"document_id": stored["document_id"]})["code"] == "document.not_found"


# -- in process: cheap checks of limits and the error shape (model-free hash embedder) --------


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[tuple[TestClient, Fathom]]:
    fathom = Fathom(home=tmp_path / "home", embedder="hash:64", rate_limit_burst=3)
    with fathom, TestClient(create_app(fathom=fathom), raise_server_exceptions=False) as client:
        yield client, fathom


def _rpc(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": params or {}}


def test_mcp_requests_share_the_key_request_budget(app_client: tuple[TestClient, Fathom]):
    client, fathom = app_client
    # The buckets read a clock the test moves: no refill happens between requests however slowly
    # a loaded machine serves them.
    now = [0.0]
    client.app.state.service.buckets = LocalBuckets(clock=lambda: now[0])  # type: ignore[attr-defined]
    key, _ = fathom.keys.create(tenant="acme", user="alice")
    headers = {**ACCEPT, "Authorization": f"Bearer {key}"}
    statuses = [client.post("/mcp", json=_rpc("tools/list"), headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = client.post("/mcp", json=_rpc("tools/list"), headers=headers)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit.requests"
    retry_after = int(limited.headers["retry-after"])
    assert retry_after >= 1
    # ... and the REST API draws on the same budget.
    assert client.get("/v1/documents", headers=headers).status_code == 429
    # Waiting as told is enough.
    now[0] += retry_after
    assert client.post("/mcp", json=_rpc("tools/list"), headers=headers).status_code == 200


def test_tool_errors_carry_the_request_id_of_the_http_request(app_client: tuple[TestClient, Fathom]):
    client, fathom = app_client
    key, _ = fathom.keys.create(tenant="acme", user="alice")
    headers = {**ACCEPT, "Authorization": f"Bearer {key}", "X-Request-ID": "trace-me-42"}
    call = _rpc("tools/call", {"name": "get_document", "arguments": {"document_id": "missing"}})
    response = client.post("/mcp", json=call, headers=headers)
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["isError"] is True
    error = {"code": "document.not_found", "message": "no document 'missing'", "request_id": "trace-me-42"}
    assert result["_meta"] == {"fathom/error": error} and "structuredContent" not in result
    assert result["content"] == [{"type": "text", "text": "[document.not_found] no document 'missing'"}]
    assert response.headers["x-request-id"] == "trace-me-42"


def test_mcp_is_not_part_of_the_rest_schema(app_client: tuple[TestClient, Fathom]):
    client, _ = app_client
    assert "/mcp" not in client.get("/openapi.json").json()["paths"]


def test_mcp_searches_and_asks_are_audited_like_the_rest_apis(app_client: tuple[TestClient, Fathom]):
    client, fathom = app_client
    doc_id = fathom.ingest_text("# Badges\n\nBadges are renewed every spring.", source="badges.md").doc_id
    key, info = fathom.keys.create(tenant="default", user="alice")
    headers = {**ACCEPT, "Authorization": f"Bearer {key}", "X-Request-ID": "mcp-audit-1"}
    search = _rpc("tools/call", {"name": "search", "arguments": {"query": "badges renewed"}})
    ask = _rpc("tools/call", {"name": "ask", "arguments": {"question": "When are badges renewed?"}})
    for call in (search, ask):
        response = client.post("/mcp", json=call, headers=headers)
        assert response.status_code == 200 and not response.json()["result"]["isError"], response.text

    [searched] = fathom.audit.events(tenant="default", action="search")
    [answered] = fathom.audit.events(tenant="default", action="ask")
    for event in (searched, answered):
        assert (event.actor_kind, event.actor_id, event.actor_user) == ("key", info.key_id, "alice")
        assert event.request_id == "mcp-audit-1" and event.details["doc_ids"] == [doc_id]
        assert "query" not in event.details
