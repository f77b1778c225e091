"""Shared deployment: PostgreSQL as the store of record, Redis for limits and job signals.

Several `fathom serve` processes, each with its own index folder, on one database and one
Redis must behave as one service. These run against the real local servers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fathom import Fathom
from tests.service.conftest import Served
from tests.service.server import ServerProcess
from tests.service.shared import REDIS, postgres_schema, redis_prefix

pytestmark = [pytest.mark.integration]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_prefix() as value:
        yield value


# The database and Redis fixtures come first, so the apps stop before their schema is dropped.
def test_the_api_on_postgres_and_redis_in_one_process(postgres_url, prefix, serve):
    served: Served = serve(database_url=postgres_url, redis_url=REDIS, redis_prefix=prefix)
    alice = served.key(groups=("eng",))
    bob = served.key(user="bob")
    doc = served.upload(
        alice, text="# Otters\n\nSea otters hold hands.", source="o.md", acl={"groups": ["eng"]}
    )
    found = served.client.post("/v1/search", json={"query": "otters"}, headers=alice)
    assert [h["doc_id"] for h in found.json()["hits"]] == [doc["document_id"]]
    assert served.client.post("/v1/search", json={"query": "otters"}, headers=bob).json() == {"hits": []}
    assert served.client.get(f"/v1/documents/{doc['document_id']}", headers=bob).status_code == 404
    assert served.client.get("/readyz").json()["checks"] == {"database": True, "redis": True}
    # Request buckets live in Redis: a second app on the same Redis sees the same limits.
    strict = {"database_url": postgres_url, "redis_url": REDIS, "redis_prefix": prefix}
    first = serve(**strict, rate_limit_burst=5, rate_limit_per_minute=1)
    second = serve(**strict, rate_limit_burst=5, rate_limit_per_minute=1)
    carol = first.key(user="carol")
    statuses = [app.client.get("/v1/documents", headers=carol).status_code for app in [first, second] * 3]
    assert statuses == [200] * 5 + [429]


@pytest.mark.slow
def test_several_servers_on_one_database_behave_as_one_service(tmp_path: Path):
    with postgres_schema() as url, redis_prefix() as prefix:
        env = {
            "FATHOM_DATABASE_URL": url,
            "FATHOM_REDIS_URL": REDIS,
            "FATHOM_REDIS_PREFIX": prefix,
            "FATHOM_EMBEDDER": "hash:64",
            "FATHOM_RATE_LIMIT_BURST": "100",
            "FATHOM_RATE_LIMIT_PER_MINUTE": "1",
        }
        with Fathom(home=tmp_path / "admin", embedder="hash:64", database_url=url) as fathom:
            key, _ = fathom.keys.create(tenant="acme", user="alice", admin=True)
            bob_key, _ = fathom.keys.create(tenant="acme", user="bob")
        headers = {"Authorization": f"Bearer {key}"}
        bob = {"Authorization": f"Bearer {bob_key}"}
        # The first server takes no jobs: only the second one's worker can ingest.
        front = ServerProcess(tmp_path / "front", {**env, "FATHOM_JOB_WORKERS": "0"}).wait_ready()
        back = ServerProcess(tmp_path / "back", env).wait_ready()
        try:
            accepted = httpx.post(
                f"{front.url}/v1/documents",
                json={"text": "# Beavers\n\nBeavers build dams from mud.", "source": "b.md"},
                headers=headers,
            ).json()
            deadline = time.monotonic() + 30
            while (job := httpx.get(f"{front.url}/v1/jobs/{accepted['job_id']}", headers=headers).json())[
                "status"
            ] != "succeeded":
                assert time.monotonic() < deadline and job["status"] != "failed", job
                time.sleep(0.5)
            # Each server's own indexes catch up from the shared change log.
            for server in (front, back):
                hits = httpx.post(
                    f"{server.url}/v1/search", json={"query": "beavers"}, headers=headers
                ).json()
                assert [h["doc_id"] for h in hits["hits"]] == [accepted["document_id"]]
            deleted = httpx.delete(f"{back.url}/v1/documents/{accepted['document_id']}", headers=headers)
            assert deleted.status_code == 200
            assert httpx.post(
                f"{front.url}/v1/search", json={"query": "beavers"}, headers=headers
            ).json() == {"hits": []}
            # One request budget per key across servers: 100 at once, then 1 a minute.
            servers = [front, back] * 50
            statuses = [httpx.get(f"{s.url}/v1/documents", headers=bob).status_code for s in servers]
            assert statuses == [200] * 100
            limited = httpx.get(f"{front.url}/v1/documents", headers=bob)
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        finally:
            front.stop()
            back.stop()
