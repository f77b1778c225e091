"""Item 11: JSON routes take small bodies, and free-form fields are bounded.

Uploads keep ``max_upload_bytes``; every other route (search, ask, feedback ...) refuses a body
over ``max_request_bytes`` with 413 ``request.too_large``: a declared ``Content-Length`` before
any of the body is read, a chunked body as soon as it passes the limit. Filters and metadata
have bounds on their count and on each key and value (422), shown in the OpenAPI schema. Many
large bodies at once leave the server's memory where it was.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fathom import Fathom
from tests.security.outages import serving
from tests.service.conftest import Served
from tests.service.server import ServerProcess

pytestmark = [pytest.mark.integration]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path / "home") as app:
        yield app


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def _chunks(total: int, size: int = 65536) -> Iterator[bytes]:
    """A JSON body of about ``total`` bytes sent without a Content-Length."""
    yield b'{"query": "otters", "filters": {"team": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}}'


def test_json_routes_refuse_bodies_over_max_request_bytes(served: Served):
    alice = served.key()
    client = served.client
    big = {"query": "otters", "filters": {"team": "x" * 200_000}}
    for path in ("/v1/search", "/v1/ask"):
        _error(client.post(path, json=big, headers=alice), 413, "request.too_large")
        streamed = client.post(
            path, content=_chunks(1_000_000), headers={**alice, "Content-Type": "application/json"}
        )
        _error(streamed, 413, "request.too_large")
    feedback = {"answer_id": "a" * 10, "rating": "up", "comment": "c" * 100_000}
    _error(client.post("/v1/feedback", json=feedback, headers=alice), 413, "request.too_large")
    # Uploads keep their own, larger limit (max_upload_bytes).
    upload = client.post("/v1/documents", json={"text": "# Big\n\n" + "word " * 60_000}, headers=alice)
    assert upload.status_code == 202, upload.text


def test_filter_and_metadata_fields_are_bounded(served: Served):
    alice = served.key()
    client = served.client

    def search(filters: dict[str, str]) -> httpx.Response:
        return client.post("/v1/search", json={"query": "otters", "filters": filters}, headers=alice)

    assert search({"team": "ops", "source": "s" * 4096}).status_code == 200
    error = _error(search({"team": "x" * 5000}), 422, "request.invalid")
    assert "filters" in error["message"]
    _error(search({f"k{n}": "v" for n in range(33)}), 422, "request.invalid")
    long_key = "k" * 300
    error = _error(search({long_key: "v"}), 422, "request.invalid")
    assert long_key not in error["message"]  # the location is clipped, not echoed whole
    ask = client.post("/v1/ask", json={"query": "otters", "filters": {"team": "x" * 5000}}, headers=alice)
    _error(ask, 422, "request.invalid")
    metadata = {"text": "# Otters\n\nSea otters.", "metadata": {"team": "x" * 5000}}
    _error(client.post("/v1/documents", json=metadata, headers=alice), 422, "request.invalid")
    many = {"text": "# Otters\n\nSea otters.", "metadata": {f"k{n}": "v" for n in range(65)}}
    _error(client.post("/v1/documents", json=many, headers=alice), 422, "request.invalid")


def test_the_limits_are_in_the_openapi_schema(served: Served):
    schema = served.client.get("/openapi.json").json()
    search_in = schema["components"]["schemas"]["SearchIn"]["properties"]["filters"]["anyOf"][0]
    assert search_in["maxProperties"] == 32
    assert search_in["propertyNames"]["maxLength"] == 256
    assert search_in["additionalProperties"]["maxLength"] == 4096
    # The configured max_query_chars, not just a static bound.
    assert schema["components"]["schemas"]["SearchIn"]["properties"]["query"]["maxLength"] == 2000
    for path in ("/v1/search", "/v1/ask", "/v1/feedback", "/v1/documents"):
        assert "413" in schema["paths"][path]["post"]["responses"], path
    upload = schema["paths"]["/v1/documents"]["post"]["requestBody"]["content"]
    for form in ("application/json", "multipart/form-data"):
        assert upload[form]["schema"]["properties"]["metadata"]["maxProperties"] == 64


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


def _send_chunked(port: int, key: str, total: int) -> None:
    """POST a chunked JSON body of ``total`` bytes to /v1/search; the server may cut it off."""
    head = (
        "POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            sock.sendall(head.encode())
            for chunk in _chunks(total, 1 << 20):
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
            while sock.recv(65536):
                pass
        except OSError:  # refused early: the server closed the connection
            pass


@pytest.mark.slow
def test_many_large_bodies_at_once_leave_the_server_memory_alone(tmp_path: Path):
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:
        key, _ = fathom.keys.create(tenant="acme", user="alice")
    server = ServerProcess(home, {"FATHOM_EMBEDDER": "hash:64", "FATHOM_RATE_LIMIT_PER_MINUTE": "0"})
    server.wait_ready()
    try:
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.post(f"{server.url}/v1/search", json={"query": "x"}, headers=headers).status_code == 200
        before = _peak_rss_kib(server.process.pid)
        senders = [threading.Thread(target=_send_chunked, args=(server.port, key, 8 << 20)) for _ in range(8)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(120)
        grown_mib = (_peak_rss_kib(server.process.pid) - before) / 1024
        # 64 MiB were sent; a server that reads them holds several times that at its peak.
        assert grown_mib < 32, f"peak memory grew by {grown_mib:.0f} MiB"
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
