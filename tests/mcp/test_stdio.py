"""`fathom mcp` on stdio: standard output carries the protocol and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fathom import Fathom
from tests.mcp.conftest import Transports, server_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Runs `fathom mcp` with a search that also writes to stdout the ways a careless library might:
# print() and a raw write to file descriptor 1.
NOISY_SERVER = """
import os, sys
import fathom.api

real_search = fathom.api.Fathom.search

def noisy_search(self, *args, **kwargs):
    print("stray print from a library")
    os.write(1, b"stray raw write to fd 1\\n")
    return real_search(self, *args, **kwargs)

fathom.api.Fathom.search = noisy_search
sys.argv = ["fathom", "mcp"]
from fathom.cli import main
main()
"""


def _messages(*items: dict[str, object]) -> str:
    return "".join(json.dumps(item) + "\n" for item in items)


def test_stdout_carries_only_protocol_messages(tmp_path: Path):
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:
        fathom.ingest_text("# Kettle\n\nDescale the kettle monthly.\n", source="kettle.md")
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}
    search = {"name": "search", "arguments": {"query": "kettle"}}
    requests = _messages(
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": search},
    )
    stderr_path = tmp_path / "stderr.log"
    with (
        stderr_path.open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-c", NOISY_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=server_env(home, FATHOM_EMBEDDER="hash:64", FATHOM_LOG_LEVEL="INFO"),
        ) as server,
    ):
        watchdog = threading.Timer(300, server.kill)
        watchdog.start()
        try:
            assert server.stdin is not None and server.stdout is not None
            server.stdin.write(requests)
            server.stdin.flush()
            # Like a client, read both replies before closing stdin (which ends the session).
            lines = [server.stdout.readline(), server.stdout.readline()]
            server.stdin.close()
            lines += server.stdout.read().splitlines()
            assert server.wait() == 0
        finally:
            watchdog.cancel()
            if server.poll() is None:
                server.kill()
    log = stderr_path.read_text(encoding="utf-8")
    lines = [line for line in lines if line]
    replies = [json.loads(line) for line in lines]  # every line is JSON ...
    assert all(reply["jsonrpc"] == "2.0" for reply in replies)  # ... and JSON-RPC
    assert [reply["id"] for reply in replies] == [1, 2], log
    assert replies[1]["result"]["isError"] is False
    assert replies[1]["result"]["structuredContent"]["hits"][0]["source"] == "kettle.md"
    # The noise and the logs went to stderr.
    assert "stray print from a library" in log
    assert "stray raw write to fd 1" in log
    assert "mcp.tool" in log and "mcp.stdio_started" in log


def test_logs_of_a_session_go_to_stderr(transports: Transports):
    client = transports.client("stdio", "acme")
    client.ok("search", {"query": "kettle"})
    log = transports.stderr_log("acme").read_text(encoding="utf-8")
    assert "mcp.stdio_started" in log and "tenant=acme" in log
    assert "mcp.tool" in log and "tool=search" in log
    assert "kettle" not in log  # never the query


def test_an_unknown_home_setting_fails_with_a_clear_message(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "fathom.toml").write_text("chunk_tokens = 'lots'\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "fathom", "mcp"],
        input="",
        capture_output=True,
        text=True,
        env=server_env(home),
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert "error" in done.stderr and "chunk_tokens" in done.stderr
    assert "Traceback" not in done.stderr
