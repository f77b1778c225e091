"""URL ingestion against a real HTTP server on 127.0.0.1; no traffic leaves the machine.

Loopback is refused by default, so the happy path allows 127.0.0.1 explicitly; the
SSRF set is refused before any connection is made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fathom import Fathom

pytestmark = pytest.mark.integration

PAGE = b"""<!doctype html><html><head><title>Harbour rules</title></head><body>
<nav>Home | Contact</nav><h1>Harbour rules</h1><p>Moorings are free for the first night.</p></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes = {
            "/rules": (200, "text/html; charset=utf-8", PAGE),
            "/noext": (200, "text/html", PAGE),
            "/hop": (302, "", b""),
            "/to-private": (302, "", b""),
            "/to-metadata": (302, "", b""),
            "/loop": (302, "", b""),
            "/big": (200, "text/plain", b"x" * 4096),
            "/missing": (404, "text/plain", b"no"),
        }
        status, kind, body = routes.get(self.path, (404, "text/plain", b""))
        self.send_response(status)
        if self.path == "/hop":
            self.send_header("Location", "/rules")
        elif self.path == "/to-private":
            self.send_header("Location", "http://10.1.2.3/secret")
        elif self.path == "/to-metadata":
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        elif self.path == "/loop":
            self.send_header("Location", "/loop")
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def allowed(tmp_path: Path) -> Iterator[Fathom]:
    with Fathom(
        home=tmp_path / "home", embedder="hash:64", url_allow=["127.0.0.1/32"], url_max_bytes=2048
    ) as instance:
        yield instance


def test_url_is_fetched_sniffed_and_searchable(allowed: Fathom, server: str):
    outcome = allowed.ingest_url(f"{server}/noext")
    assert outcome.status == "added", outcome
    (document,) = allowed.documents()
    assert document.mime_type == "text/html" and document.title == "Harbour rules"
    assert document.source == f"{server}/noext"
    hit = allowed.search("moorings free first night", k=1)[0]
    assert "Moorings are free" in hit.text and "Home | Contact" not in hit.text
    assert allowed.ingest_url(f"{server}/noext").status == "unchanged"


def test_redirects_are_followed_and_each_hop_is_checked(allowed: Fathom, server: str):
    assert allowed.ingest_url(f"{server}/hop").status == "added"
    for path in ("/to-private", "/to-metadata"):
        outcome = allowed.ingest_url(f"{server}{path}")
        assert (outcome.status, outcome.error_code) == ("failed", "url.blocked_address"), path
    assert allowed.ingest_url(f"{server}/loop").error_code == "url.too_many_redirects"


def test_limits_and_http_errors(allowed: Fathom, server: str):
    assert allowed.ingest_url(f"{server}/big").error_code == "url.too_large"
    assert allowed.ingest_url(f"{server}/missing").error_code == "url.http_error"
    assert allowed.status().documents == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.0.0.8/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
    ],
)
def test_ssrf_set_is_refused_by_default(hash_fathom: Fathom, url: str):
    outcome = hash_fathom.ingest_url(url)
    assert (outcome.status, outcome.error_code) == ("failed", "url.blocked_address")
    assert "private" in (outcome.message or "")


def test_only_http_and_https(hash_fathom: Fathom, tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    for url in (f"file://{secret}", "ftp://127.0.0.1/x", "gopher://127.0.0.1/"):
        assert hash_fathom.ingest_url(url).error_code == "url.scheme_not_allowed"


def test_default_deny_applies_to_the_server_too(hash_fathom: Fathom, server: str):
    outcome = hash_fathom.ingest_url(f"{server}/rules")
    assert outcome.error_code == "url.blocked_address"


def test_cli_ingests_a_url(server: str, tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fathom",
            "ingest",
            f"{server}/rules",
            "--json",
            "--home",
            str(tmp_path / "h"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "FATHOM_EMBEDDER": "hash:64", "FATHOM_URL_ALLOW": '["127.0.0.1"]'},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["added"] == 1
