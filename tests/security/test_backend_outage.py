"""Item 9: Redis or PostgreSQL going away is a 503 the client may retry, never a 500 or a dead thread.

While a backend is down, authenticated routes answer 503 ``backend.unavailable`` with
``Retry-After`` and ``/readyz`` names the backend that does not answer; when it is back, the
same process serves again without a restart, and the job-signal listener has resubscribed. At
start, an unreachable backend is one clean error line and exit code 1. The outages are real:
a private redis-server killed by PID, and a TCP proxy in front of the shared PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.security.outages import RedisServer, TcpProxy, serving, wait_until
from tests.service.server import free_port
from tests.service.shared import postgres_schema

pytestmark = [pytest.mark.integration]

DOC = {"text": "# Otters\n\nSea otters hold hands while they sleep.", "source": "otters.md"}


def _unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "backend.unavailable", error
    assert error["request_id"] == response.headers["x-request-id"]
    assert int(response.headers["retry-after"]) >= 1
    # Nothing about the driver, the address or the internals.
    assert "psycopg" not in error["message"] and "127.0.0.1" not in error["message"]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def proxied_postgres() -> Iterator[tuple[str, TcpProxy]]:
    """A fresh schema on the shared PostgreSQL, reached only through a proxy the test controls."""
    with postgres_schema() as direct:
        proxy = TcpProxy(("127.0.0.1", 5432)).start()
        try:
            yield direct.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/"), proxy
        finally:
            proxy.stop()


def test_a_redis_outage_is_503_then_service_and_job_signals_resume(redis_server: RedisServer, tmp_path: Path):
    prefix = "fathom-outage"
    with serving(tmp_path / "home", redis_url=redis_server.url, redis_prefix=prefix) as served:
        alice = served.key()
        client = served.client
        assert client.get("/v1/documents", headers=alice).status_code == 200
        channel = f"{prefix}:jobs"
        wait_until(lambda: redis_server.subscribers(channel) == 1, 10, "job-signal subscription")

        redis_server.kill()
        _unavailable(client.get("/v1/documents", headers=alice))
        _unavailable(client.post("/v1/search", json={"query": "otters"}, headers=alice))
        _unavailable(client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=alice))
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not_ready", "checks": {"database": True, "redis": False}}
        assert client.get("/healthz").status_code == 200

        redis_server.start()  # same port, empty: a restarted Redis
        assert client.get("/v1/documents", headers=alice).status_code == 200
        assert client.get("/readyz").json()["checks"] == {"database": True, "redis": True}
        # The listener thread survived and subscribed again; the workers still take jobs.
        wait_until(lambda: redis_server.subscribers(channel) == 1, 20, "job-signal resubscription")
        served.upload(alice, **DOC)


def test_a_database_outage_is_503_then_service_resumes(
    proxied_postgres: tuple[str, TcpProxy], tmp_path: Path
):
    url, proxy = proxied_postgres
    with serving(tmp_path / "home", database_url=url) as served:
        alice = served.key()
        client = served.client
        served.upload(alice, **DOC)
        assert client.post("/v1/search", json={"query": "otters"}, headers=alice).status_code == 200

        proxy.stop()
        _unavailable(client.get("/v1/documents", headers=alice))
        _unavailable(client.post("/v1/search", json={"query": "otters"}, headers=alice))
        _unavailable(client.post("/v1/documents", json=DOC, headers=alice))
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not_ready", "checks": {"database": False}}
        assert client.get("/healthz").status_code == 200

        proxy.start()
        hits = client.post("/v1/search", json={"query": "otters"}, headers=alice)
        assert hits.status_code == 200 and len(hits.json()["hits"]) == 1
        assert client.get("/readyz").status_code == 200
        # The job worker survived the outage too.
        served.upload(alice, text="# Beavers\n\nBeavers build dams.", source="beavers.md")


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")}
    full_env.update(FATHOM_HOME=str(tmp_path / "home"), FATHOM_EMBEDDER="hash:64", **env)
    command = [sys.executable, "-m", "fathom", "serve", "--port", str(free_port())]
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setting", "url", "message"),
    [
        (
            "FATHOM_DATABASE_URL",
            "postgresql+psycopg://fathom@127.0.0.1:{port}/fathom",
            "cannot open the store",
        ),
        ("FATHOM_REDIS_URL", "redis://127.0.0.1:{port}/0", "cannot reach Redis at 127.0.0.1:{port}"),
    ],
)
def test_serve_with_an_unreachable_backend_exits_with_one_clean_line(
    tmp_path: Path, setting: str, url: str, message: str
):
    port = free_port()  # nothing listens there
    run = _serve(tmp_path, **{setting: url.format(port=port)})
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr[-3000:]
    assert lines[0].startswith("error [backend.unavailable] " + message.format(port=port)), lines
