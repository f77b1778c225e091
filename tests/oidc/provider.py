"""A real OpenID Provider on 127.0.0.1 for the OIDC tests: oidc-provider (Node), and a client
that obtains tokens through its real endpoints (authorization code with PKCE, driven over HTTP).

The provider's package is pinned in tests/oidc/package.json (lock file committed); `.ci/run`
runs `npm ci` there. Without node or the installed package the tests skip with the reason;
under CI=true they fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.service.server import free_port

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "provider.mjs"
PACKAGE = HERE / "node_modules" / "oidc-provider"

RESOURCE = "urn:fathom:api"
OTHER_RESOURCE = "https://other.test/"
API_CLIENT = "fathom-tests"
SHORT_CLIENT = "fathom-short-lived"
WEB_CLIENT = "fathom-web"
CALLBACK = "http://127.0.0.1:9/callback"  # never contacted: the code is read from the redirect

# Users in two tenants with several groups; "nobody" has no tenant claim.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"tenant": "acme", "groups": ["eng", "ops"], "role": "editor", "name": "Alice Acme"},
    "bob": {"tenant": "acme", "groups": ["sales"], "role": "reader", "name": "Bob Acme"},
    "carol": {"tenant": "globex", "groups": ["eng"], "role": "admin", "name": "Carol Globex"},
    "nobody": {"groups": ["eng"], "name": "No Tenant"},
}


def require_node() -> str:
    """The node binary; skips (fails under CI=true) when node or the provider package is missing."""
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "node is not installed (the OIDC tests run oidc-provider on Node 20+)"
    elif not PACKAGE.is_dir():
        reason = f"oidc-provider is not installed: run `npm ci` in {HERE} (.ci/run does)"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    assert node is not None
    return node


def signing_key(kid: str) -> tuple[dict[str, Any], rsa.RSAPrivateKey]:
    """A fresh RS256 key: its private JWK (for the provider) and the key (for forging tests)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk, key


@dataclass
class ProviderConfig:
    issuer: str
    port: int
    keys: list[dict[str, Any]]
    resources: dict[str, dict[str, Any]]
    clients: list[dict[str, Any]]
    access_token_ttl: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "port": self.port,
            "jwks": {"keys": self.keys},
            "accounts": ACCOUNTS,
            "clients": self.clients,
            "resources": self.resources,
            "defaultResource": RESOURCE,
            "accessTokenTTL": self.access_token_ttl,
        }


def default_clients(web_redirects: list[str]) -> list[dict[str, Any]]:
    public = {
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }
    return [
        {"client_id": API_CLIENT, "redirect_uris": [CALLBACK], **public},
        {"client_id": SHORT_CLIENT, "redirect_uris": [CALLBACK], **public},
        {"client_id": WEB_CLIENT, "redirect_uris": web_redirects or [CALLBACK], **public},
    ]


class OpenIdProvider:
    """One oidc-provider process; ``issuer`` is its URL (http on loopback)."""

    def __init__(
        self,
        folder: Path,
        *,
        keys: list[dict[str, Any]],
        web_redirects: Sequence[str] = (),
        access_token_ttl: dict[str, int] | None = None,
    ) -> None:
        node = require_node()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.config = ProviderConfig(
            issuer=f"http://127.0.0.1:{port}",
            port=port,
            keys=keys,
            resources={RESOURCE: {}, OTHER_RESOURCE: {}},
            clients=default_clients(list(web_redirects)),
            access_token_ttl={SHORT_CLIENT: 1, **(access_token_ttl or {})},
        )
        self._config_path = folder / f"provider-{port}.json"
        self._write()
        self._log = (folder / f"provider-{port}.log").open("wb")
        self.process = subprocess.Popen(
            [node, str(SCRIPT), str(self._config_path)],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self._await("ready")
        except BaseException:
            self.stop()
            raise

    @property
    def issuer(self) -> str:
        return self.config.issuer

    def _write(self) -> None:
        self._config_path.write_text(json.dumps(self.config.to_json()), encoding="utf-8")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._seen:
                self._lines.append(line.strip())
                self._seen.notify_all()

    def _await(self, word: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self._seen:
            while word not in self._lines:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"the OpenID Provider did not say {word!r}; see {self._log.name}")
                self._seen.wait(min(left, 0.2))
            self._lines.remove(word)

    def reload(self) -> None:
        """Apply ``config`` (e.g. new keys: rotation) on the same port, as a new provider."""
        self._write()
        assert self.process.stdin is not None
        self.process.stdin.write("reload\n")
        self.process.stdin.flush()
        self._await("reloaded")

    def stop(self) -> None:
        """Stop the provider (closing its stdin ends it); safe to call twice."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()

    def metadata(self) -> dict[str, Any]:
        response = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def tokens(
        self,
        user: str,
        *,
        client_id: str = API_CLIENT,
        resource: str | None = RESOURCE,
        scope: str = "openid profile fathom",
        redirect_uri: str = CALLBACK,
    ) -> dict[str, Any]:
        """Sign ``user`` in through the real authorization endpoint, login page and token endpoint."""
        metadata = self.metadata()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(16)
        params = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": scope,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "nonce": secrets.token_urlsafe(16),
        }
        if resource is not None:
            params["resource"] = resource
        with httpx.Client(timeout=10) as http:
            response = http.get(metadata["authorization_endpoint"], params=params)
            for _ in range(8):
                assert response.status_code in (302, 303), response.text
                location = str(response.next_request.url) if response.next_request else ""
                if location.startswith(redirect_uri):
                    break
                if "/interaction/" in location and not location.endswith("/abort"):
                    page = http.get(location)
                    assert page.status_code == 200, page.text
                    prompt = "login" if 'name="login"' in page.text else "consent"
                    form = {"prompt": prompt, "login": user, "password": "any"}
                    response = http.post(location, data=form)
                else:
                    response = http.get(location)
            else:
                raise AssertionError("the authorization flow did not come back to the client")
            query = parse_qs(urlsplit(location).query)
            assert "code" in query, query
            assert query["state"] == [state]
            form = {
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": redirect_uri,
                "client_id": client_id,
                "code_verifier": verifier,
            }
            if resource is not None:
                form["resource"] = resource
            token = http.post(metadata["token_endpoint"], data=form)
            assert token.status_code == 200, token.text
            return dict(token.json())

    def access_token(self, user: str, **options: Any) -> str:
        return str(self.tokens(user, **options)["access_token"])
