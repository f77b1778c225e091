"""Fixtures of the single sign-on tests: a real OpenID Provider (oidc-provider on 127.0.0.1) and
fathom apps that trust it, seeded with documents of two tenants through API keys."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from fathom import Fathom
from fathom.service import create_app
from tests.oidc.provider import RESOURCE, WEB_CLIENT, OpenIdProvider, signing_key

# Every document holds the word "handbook" and a marker only it has.
DOCUMENTS: dict[str, dict[str, Any]] = {
    "acme-open": {"tenant": "acme", "acl": {}},
    "acme-eng": {"tenant": "acme", "acl": {"groups": ["eng"]}},
    "acme-sales": {"tenant": "acme", "acl": {"groups": ["sales"]}},
    "acme-bob": {"tenant": "acme", "acl": {"users": ["bob"]}},
    "globex-open": {"tenant": "globex", "acl": {}},
    "globex-eng": {"tenant": "globex", "acl": {"groups": ["eng"]}},
}
# What each provider account may read: tenant from the `tenant` claim, groups from `groups`.
VISIBLE = {
    "alice": {"acme-open", "acme-eng"},
    "bob": {"acme-open", "acme-sales", "acme-bob"},
    "carol": {"globex-open", "globex-eng"},
}


@dataclass
class Keys:
    """The provider's signing keys: JWKs for its config, private keys for forged tokens."""

    jwks: dict[str, dict[str, Any]] = field(default_factory=dict)
    private: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)

    def make(self, kid: str) -> dict[str, Any]:
        jwk, key = signing_key(kid)
        self.jwks[kid], self.private[kid] = jwk, key
        return jwk


@pytest.fixture(scope="session")
def keys() -> Keys:
    made = Keys()
    made.make("key-1")
    return made


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[OpenIdProvider]:
    """The OpenID Provider every test shares (its keys never change)."""
    running = OpenIdProvider(tmp_path_factory.mktemp("provider"), keys=[keys.jwks["key-1"]])
    yield running
    running.stop()


def oidc_settings(provider: OpenIdProvider, **extra: Any) -> dict[str, Any]:
    """fathom settings that trust ``provider``'s access tokens (and the web client's ID tokens)."""
    return {
        "oidc_issuer": provider.issuer,
        "oidc_audience": [RESOURCE, WEB_CLIENT],
        "oidc_allow_http_loopback": True,
        "oidc_client_id": WEB_CLIENT,
        "oidc_resource": RESOURCE,
        "rate_limit_per_minute": 0,
        **extra,
    }


@dataclass
class SsoApp:
    """A fathom app (in-process ASGI client, real HTTP to the provider) and its fathom."""

    client: TestClient
    fathom: Fathom
    doc_ids: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, token: str, **options: Any) -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {token}"}, **options)

    def visible(self, token: str) -> set[str]:
        """Names of the documents ``token``'s principal is listed (asserts a 200)."""
        response = self.get("/v1/documents", token)
        assert response.status_code == 200, response.text
        return {doc["title"] for doc in response.json()["documents"]}

    def fetches(self, document: str = "jwks") -> float:
        """How many successful fetches of the issuer's discovery or keys the app made."""
        text = self.client.get("/metrics").text
        prefix = f'fathom_oidc_fetches_total{{document="{document}",outcome="ok"}} '
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].removeprefix(prefix)) if lines else 0.0

    def seed(self) -> None:
        """Upload ``DOCUMENTS`` with an admin API key of each tenant, waiting for the jobs."""
        self.doc_ids = seed_documents(self.client, admin_keys(self.fathom))


def admin_keys(fathom: Fathom) -> dict[str, dict[str, str]]:
    """Headers with a new admin API key of each tenant of ``DOCUMENTS``."""
    headers = {}
    for tenant in ("acme", "globex"):
        key, _ = fathom.keys.create(tenant=tenant, user="seeder", admin=True)
        headers[tenant] = {"Authorization": f"Bearer {key}"}
    return headers


def seed_documents(client: httpx.Client, admins: dict[str, dict[str, str]]) -> dict[str, str]:
    """Upload ``DOCUMENTS`` through the API and wait for their jobs; their ids by name."""
    doc_ids = {}
    for name, spec in DOCUMENTS.items():
        body = {
            "text": f"# {name}\n\nThe handbook page {name} holds marker{name.replace('-', '')}.",
            "source": f"{name}.md",
            "title": name,
            "acl": spec["acl"],
        }
        headers = admins[spec["tenant"]]
        accepted = client.post("/v1/documents", json=body, headers=headers)
        assert accepted.status_code == 202, accepted.text
        doc_ids[name] = accepted.json()["document_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = client.get(f"/v1/jobs/{accepted.json()['job_id']}", headers=headers).json()
            if job["status"] == "succeeded":
                break
            assert job["status"] != "failed", job
            time.sleep(0.05)
        else:
            raise AssertionError(f"the upload of {name} did not finish")
    return doc_ids


def open_app(home: Path, provider: OpenIdProvider, *, seed: bool = True, **settings: Any) -> SsoApp:
    """A fathom app over ``home`` that trusts ``provider`` (seeded with ``DOCUMENTS``)."""
    fathom = Fathom(home=home, embedder="hash:64", **oidc_settings(provider, **settings))
    client = TestClient(create_app(fathom=fathom), raise_server_exceptions=False)
    client.__enter__()
    app = SsoApp(client, fathom)
    if seed:
        app.seed()
    return app


def close_app(app: SsoApp) -> None:
    app.client.__exit__(None, None, None)
    app.fathom.close()


@pytest.fixture
def sso_app(tmp_path: Path) -> Iterator[Callable[..., SsoApp]]:
    """Start fathom apps over fresh homes: ``sso_app(provider, seed=True, **settings)``."""
    opened: list[SsoApp] = []

    def start(provider: OpenIdProvider, *, seed: bool = True, **settings: Any) -> SsoApp:
        app = open_app(tmp_path / f"home{len(opened)}", provider, seed=seed, **settings)
        opened.append(app)
        return app

    yield start
    for app in opened:
        close_app(app)
