"""Item 3: MCP ingest_text calls that wait for their job cannot starve the server.

One key floods a real `fathom serve` (no job workers, so no job ever finishes) with ingest_text
calls that ask to wait 300 s each, through the official MCP client over streamable HTTP. Health
checks, another tenant's search and another tenant's MCP calls must still answer at once: a wait
holds no worker thread, and a key has at most ``mcp_waits_per_key`` waits at once (the other
calls answer at once with their job queued).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from fathom import Fathom
from tests.service.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CALLS = 45  # more than the 40 threads of AnyIO's default pool
ACCEPT = {"Accept": "application/json, text/event-stream"}


@dataclass
class Flood:
    """ingest_text calls in flight from one key, and the results of those that returned."""

    results: list[dict[str, Any]] = field(default_factory=list)
    scope: anyio.CancelScope | None = None

    async def run(self, url: str, key: str) -> None:
        with anyio.CancelScope() as self.scope:
            headers = {"Authorization": f"Bearer {key}"}
            async with (
                httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(400)) as http,
                streamable_http_client(url, http_client=http) as (read, write, _),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                await session.list_tools()  # once, so calls need not fetch the output schemas
                async with anyio.create_task_group() as group:
                    for n in range(CALLS):
                        group.start_soon(self._call, session, n)

    async def _call(self, session: ClientSession, n: int) -> None:
        text = f"# Note {n}\n\nFlood note number {n}."
        result = await session.call_tool("ingest_text", {"text": text, "wait_seconds": 300})
        assert not result.isError, result.content
        assert result.structuredContent is not None
        self.results.append(result.structuredContent)


@pytest.fixture(params=[4, 1000], ids=["capped", "uncapped"])
def waits_per_key(request: pytest.FixtureRequest) -> int:
    """The default-like cap, and one so high that every call waits (async waiting alone)."""
    return int(request.param)


@pytest.fixture
def world(tmp_path: Path, waits_per_key: int) -> Iterator[tuple[ServerProcess, str, str]]:
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:
        fathom.ingest_text("# Otters\n\nSea otters hold hands while they sleep.", source="otters.md")
        mallory, _ = fathom.keys.create(tenant="evil", user="mallory")
        alice, _ = fathom.keys.create(tenant="default", user="alice")
    env = {
        "FATHOM_EMBEDDER": "hash:64",
        "FATHOM_JOB_WORKERS": "0",  # no job finishes: every wait lasts its full time
        "FATHOM_MCP_WAITS_PER_KEY": str(waits_per_key),
        "FATHOM_RATE_LIMIT_PER_MINUTE": "0",  # the flood is not throttled away
    }
    server = ServerProcess(home, env).wait_ready()
    try:
        yield server, mallory, alice
    finally:
        server.kill()  # waiting calls would otherwise hold a graceful shutdown


def _quick(request: Any, what: str) -> httpx.Response:
    started = time.monotonic()
    try:
        response: httpx.Response = request()
    except httpx.TimeoutException:
        raise AssertionError(f"{what} did not answer within 2 s") from None
    assert time.monotonic() - started < 2, what
    return response


def _submitted(server: ServerProcess) -> int:
    try:
        metrics = httpx.get(f"{server.url}/metrics", timeout=2).text
    except httpx.TimeoutException:
        return 0
    for line in metrics.splitlines():
        if line.startswith("fathom_jobs_enqueued_total "):
            return int(float(line.split()[1]))
    return 0


def test_waiting_ingest_calls_of_one_key_do_not_hold_up_others(
    world: tuple[ServerProcess, str, str], waits_per_key: int
):
    server, mallory, alice = world
    waiting = min(waits_per_key, CALLS)
    flood = Flood()
    alice_headers = {"Authorization": f"Bearer {alice}"}
    with start_blocking_portal() as portal:
        running = portal.start_task_soon(flood.run, f"{server.url}/mcp", mallory)
        try:
            # Every call reached the server and queued its job; those over the key's wait cap
            # answered at once.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (
                _submitted(server) < CALLS or len(flood.results) < CALLS - waiting
            ):
                time.sleep(0.2)

            health = _quick(lambda: httpx.get(f"{server.url}/healthz", timeout=2), "/healthz")
            assert health.status_code == 200
            search = _quick(
                lambda: httpx.post(
                    f"{server.url}/v1/search", json={"query": "otters"}, headers=alice_headers, timeout=2
                ),
                "another tenant's /v1/search",
            )
            assert search.status_code == 200 and len(search.json()["hits"]) == 1
            listing = _quick(
                lambda: httpx.post(
                    f"{server.url}/mcp",
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "tools/call",
                        "params": {"name": "list_documents", "arguments": {}},
                    },
                    headers={**ACCEPT, **alice_headers},
                    timeout=2,
                ),
                "another tenant's MCP call",
            )
            assert listing.status_code == 200 and "otters.md" in listing.text

            # The key's waits are still waiting (no job can finish); the rest answered queued.
            assert len(flood.results) == CALLS - waiting
            assert all(result["status"] == "queued" for result in flood.results)
            assert not running.done()
        finally:
            if flood.scope is not None:
                portal.call(flood.scope.cancel)
            running.exception(timeout=30)
