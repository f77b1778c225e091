"""Fixtures for the HTTP service: apps around real stores, keys, and helpers to wait on jobs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fathom import Fathom
from fathom.service import create_app


def require_service(name: str, check: Callable[[], bool]) -> None:
    """Skip (fail under CI=true) when a local server the test needs does not answer."""
    if check():
        return
    reason = f"{name} is not reachable on 127.0.0.1"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Served:
    """A running app (in-process ASGI client) and its fathom."""

    client: TestClient
    fathom: Fathom

    def key(
        self,
        tenant: str = "acme",
        user: str | None = "alice",
        groups: tuple[str, ...] = (),
        admin: bool = False,
        role: str | None = None,
        scopes: tuple[str, ...] | None = None,
    ) -> dict[str, str]:
        key, _ = self.fathom.keys.create(
            tenant=tenant, user=user, groups=groups, admin=admin, role=role, scopes=scopes
        )
        return {"Authorization": f"Bearer {key}"}

    def wait_job(self, job_id: str, headers: dict[str, str], timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.client.get(f"/v1/jobs/{job_id}", headers=headers)
            if response.status_code == 429:  # polling spent the key's budget; wait as told
                time.sleep(float(response.headers["retry-after"]))
                continue
            job = response.json()
            if job["status"] in ("succeeded", "failed"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish in {timeout}s")

    def upload(self, headers: dict[str, str], **body: Any) -> dict[str, Any]:
        """Upload a JSON document and wait for its job to succeed."""
        response = self.client.post("/v1/documents", json=body, headers=headers)
        assert response.status_code == 202, response.text
        job = self.wait_job(response.json()["job_id"], headers)
        assert job["status"] == "succeeded", job
        return response.json()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start apps over a fresh home: ``serve(embedder=..., **settings)``."""
    opened: list[tuple[TestClient, Fathom]] = []

    def start(embedder: Any = "hash:64", **settings: Any) -> Served:
        fathom = Fathom(home=tmp_path / f"home{len(opened)}", embedder=embedder, **settings)
        client = TestClient(create_app(fathom=fathom), raise_server_exceptions=False)
        client.__enter__()
        opened.append((client, fathom))
        return Served(client, fathom)

    yield start
    for client, fathom in reversed(opened):
        client.__exit__(None, None, None)
        fathom.close()
