"""Shared deployment with the postgres backend: the index lives in the store's PostgreSQL.

Two real `fathom serve` processes on one PostgreSQL 18 + pgvector (started as `fathom pg start`
starts it) with ``index_backend = "postgres"``: a document one server ingests is found through
the other as soon as its job has succeeded, a delete is gone everywhere at once, and neither
server's home holds index files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fathom import Fathom
from tests.pg import fresh_database
from tests.service.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _search(server: ServerProcess, query: str, headers: dict[str, str]) -> list[str]:
    response = httpx.post(f"{server.url}/v1/search", json={"query": query}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return [hit["doc_id"] for hit in response.json()["hits"]]


def _files(home: Path) -> list[str]:
    return sorted(str(path.relative_to(home)) for path in home.rglob("*") if path.is_file())


def test_two_servers_on_one_postgres_share_the_index_with_no_catch_up(local_postgres: Any, tmp_path: Path):
    with fresh_database(local_postgres) as url:
        env = {
            "FATHOM_DATABASE_URL": url,
            "FATHOM_INDEX_BACKEND": "postgres",
            "FATHOM_EMBEDDER": "hash:64",
            "FATHOM_RATE_LIMIT_PER_MINUTE": "0",
        }
        with Fathom(
            home=tmp_path / "admin", embedder="hash:64", database_url=url, index_backend="postgres"
        ) as f:
            key, _ = f.keys.create(tenant="acme", user="alice", admin=True)
            other, _ = f.keys.create(tenant="globex", user="mallory", admin=True)
        headers = {"Authorization": f"Bearer {key}"}
        # The front takes no jobs: only the back's worker ingests, so the front never writes.
        front = ServerProcess(tmp_path / "front", {**env, "FATHOM_JOB_WORKERS": "0"}).wait_ready()
        back = ServerProcess(tmp_path / "back", env).wait_ready()
        try:
            accepted = httpx.post(
                f"{front.url}/v1/documents",
                json={"text": "# Beavers\n\nBeavers build dams from mud and branches.", "source": "b.md"},
                headers=headers,
            ).json()
            deadline = time.monotonic() + 60
            while (job := httpx.get(f"{front.url}/v1/jobs/{accepted['job_id']}", headers=headers).json())[
                "status"
            ] != "succeeded":
                assert time.monotonic() < deadline and job["status"] != "failed", job
                time.sleep(0.2)
            # Found at once through the server that did not ingest it, and through the one that did.
            assert _search(front, "beavers dams", headers) == [accepted["document_id"]]
            assert _search(back, "beavers dams", headers) == [accepted["document_id"]]
            # Another tenant's key finds nothing.
            assert _search(front, "beavers dams", {"Authorization": f"Bearer {other}"}) == []
            deleted = httpx.delete(f"{front.url}/v1/documents/{accepted['document_id']}", headers=headers)
            assert deleted.status_code == 200
            assert _search(back, "beavers dams", headers) == []
        finally:
            front.stop()
            back.stop()
        for name in ("front", "back"):
            home = tmp_path / name
            assert not (home / "index").exists(), _files(home)
            assert all(not path.startswith("index") for path in _files(home)), _files(home)
