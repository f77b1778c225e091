"""Fixtures for the security regressions: the service fixtures, and calls to the MCP tools over /mcp."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.service.conftest import Served, serve

__all__ = ["Served", "call_tool", "serve"]

_MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


def call_tool(client: TestClient, headers: dict[str, str], name: str, arguments: dict[str, Any]) -> Any:
    """Call an MCP tool over ``/mcp`` (stateless JSON) with a key; returns the JSON-RPC result."""
    params = {"name": name, "arguments": arguments}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    response = client.post("/mcp", json=body, headers={**headers, **_MCP_ACCEPT})
    assert response.status_code == 200, response.text
    return response.json()["result"]
