"""MCP over HTTP with single sign-on: the same tokens as the API, and issuer discovery through
OAuth 2.0 Protected Resource Metadata (RFC 9728), against a real `fathom serve` and a real
OpenID Provider. The last test is the official MCP client's own OAuth flow: from a bare 401 it
finds the issuer, registers itself, signs a user in and calls a tool."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from fathom import Fathom
from tests.mcp.conftest import McpClient, open_client
from tests.oidc.conftest import VISIBLE, admin_keys, seed_documents
from tests.oidc.provider import CALLBACK, RESOURCE, OpenIdProvider
from tests.service.server import ServerProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

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


@dataclass
class Site:
    server: ServerProcess
    provider: OpenIdProvider

    @property
    def mcp(self) -> str:
        return f"{self.server.url}/mcp"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, provider: OpenIdProvider) -> Iterator[Site]:
    """`fathom serve` trusting the provider for the API's resource and for its own /mcp URL."""
    root = tmp_path_factory.mktemp("mcp-sso")
    port = free_port()
    mcp_resource = f"http://127.0.0.1:{port}/mcp"
    provider.config.resources[mcp_resource] = {}
    provider.reload()
    with Fathom(home=root / "home", embedder="hash:64") as fathom:
        admins = admin_keys(fathom)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")}
    env.update(
        {
            "FATHOM_EMBEDDER": "hash:64",
            "FATHOM_OIDC_ISSUER": provider.issuer,
            "FATHOM_OIDC_AUDIENCE": json.dumps([RESOURCE, mcp_resource]),
            "FATHOM_OIDC_ALLOW_HTTP_LOOPBACK": "true",
            "FATHOM_OIDC_SCOPES": json.dumps(["openid", "fathom"]),
            "FATHOM_RATE_LIMIT_PER_MINUTE": "0",
        }
    )
    server = ServerProcess(root / "home", env, port=port, log=root / "serve.log")
    try:
        server.wait_ready(timeout=120)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            seed_documents(client, admins)
        yield Site(server, provider)
    finally:
        server.stop()


def _client(
    stack: ExitStack, url: str, *, token: str | None = None, auth: httpx.Auth | None = None
) -> McpClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    @asynccontextmanager
    async def opener() -> AsyncIterator[tuple[Any, ...]]:
        async with (
            httpx.AsyncClient(headers=headers, auth=auth, timeout=60) as http,
            streamable_http_client(url, http_client=http) as streams,
        ):
            yield streams

    return open_client(stack, opener)


def _titles(client: McpClient) -> set[str]:
    return {doc["title"] for doc in client.ok("list_documents")["documents"]}


def test_protected_resource_metadata_names_the_issuer(site: Site):
    for path, resource in (("/mcp", site.mcp), ("", site.server.url)):
        response = httpx.get(f"{site.server.url}/.well-known/oauth-protected-resource{path}", timeout=10)
        assert response.status_code == 200
        metadata = response.json()
        assert metadata["resource"] == resource
        assert metadata["authorization_servers"] == [site.provider.issuer]
        assert metadata["bearer_methods_supported"] == ["header"]
        assert metadata["scopes_supported"] == ["openid", "fathom"]


def test_a_bare_request_to_mcp_says_where_the_metadata_is(site: Site):
    response = httpx.post(site.mcp, json=INITIALIZE, headers=ACCEPT, timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.missing_key"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    metadata_url = f"{site.server.url}/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{metadata_url}"' in challenge


def test_a_refused_token_on_mcp_is_an_invalid_token_401(site: Site):
    token = site.provider.access_token("alice", resource="https://other.test/")
    headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
    response = httpx.post(site.mcp, json=INITIALIZE, headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.token_audience"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("user", ["alice", "carol"])
def test_the_official_client_with_a_token_sees_its_principals_documents(site: Site, user: str):
    with ExitStack() as stack:
        client = _client(stack, site.mcp, token=site.provider.access_token(user))
        assert _titles(client) == VISIBLE[user]
        hits = client.ok("search", {"query": "handbook", "k": 20})["hits"]
        assert {hit["title"] for hit in hits} == VISIBLE[user]


class _Memory:
    """Token storage of the MCP client (in memory, like a fresh client's first run)."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def _sign_in_over_http(authorization_url: str, user: str) -> str:
    """What a person does in the browser: the provider's login page, then back to the client."""
    with httpx.Client(timeout=10) as http:
        response = http.get(authorization_url)
        for _ in range(8):
            location = str(response.next_request.url) if response.next_request else ""
            assert location, response.text
            if location.startswith(CALLBACK):
                return location
            if "/interaction/" in location:
                page = http.get(location)
                prompt = "login" if 'name="login"' in page.text else "consent"
                response = http.post(location, data={"prompt": prompt, "login": user, "password": "any"})
            else:
                response = http.get(location)
    raise AssertionError("the sign-in did not come back to the MCP client")


def test_an_mcp_client_discovers_the_issuer_registers_and_signs_in(site: Site):
    storage = _Memory()
    callback: dict[str, str] = {}

    async def redirect(authorization_url: str) -> None:
        callback["url"] = _sign_in_over_http(authorization_url, "carol")

    async def wait_for_callback() -> tuple[str, str | None]:
        query = parse_qs(urlsplit(callback["url"]).query)
        return query["code"][0], query.get("state", [None])[0]

    auth = OAuthClientProvider(
        server_url=site.mcp,
        client_metadata=OAuthClientMetadata(
            client_name="fathom MCP test client",
            redirect_uris=[CALLBACK],  # type: ignore[list-item]
            token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            scope="openid fathom",
        ),
        storage=storage,
        redirect_handler=redirect,
        callback_handler=wait_for_callback,
    )
    with ExitStack() as stack:
        client = _client(stack, site.mcp, auth=auth)
        assert _titles(client) == VISIBLE["carol"]
    # It registered with the provider it found in the metadata, and holds a token for /mcp.
    assert storage.client is not None and storage.tokens is not None
    claims = jwt.decode(storage.tokens.access_token, options={"verify_signature": False})
    assert claims["iss"] == site.provider.issuer
    assert claims["aud"] == site.mcp
