"""OIDC tokens beside API keys, against a real OpenID Provider (oidc-provider on 127.0.0.1).

Tokens come from the provider's real endpoints (authorization code with PKCE through its login
page, driven over HTTP). Tokens the provider cannot be made to issue (``alg: none``, an HMAC
signature made with the public key, a future ``nbf``, a key it does not publish) are made
here from its real tokens and keys. fathom fetches discovery and keys from the provider itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.oidc.conftest import VISIBLE, Keys, SsoApp, close_app, open_app
from tests.oidc.provider import (
    API_CLIENT,
    OTHER_RESOURCE,
    SHORT_CLIENT,
    WEB_CLIENT,
    OpenIdProvider,
    signing_key,
)
from tests.service.server import free_port

pytestmark = [pytest.mark.integration]

# The matrix app allows 1 s of clock skew so the 1 s token of SHORT_CLIENT expires quickly.
LEEWAY = 1.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    pad = lambda part: part + "=" * (-len(part) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def _join(header: dict[str, Any], payload: dict[str, Any], signature: str) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}.{signature}"


def _sign(key: rsa.RSAPrivateKey, kid: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})


@pytest.fixture(scope="module")
def matrix_app(tmp_path_factory: pytest.TempPathFactory, provider: OpenIdProvider) -> Iterator[SsoApp]:
    app = open_app(tmp_path_factory.mktemp("matrix") / "home", provider, oidc_leeway_seconds=LEEWAY)
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[OpenIdProvider]:
    """Another issuer that signs with the very same key (only its `iss` differs)."""
    running = OpenIdProvider(tmp_path_factory.mktemp("rogue"), keys=[keys.jwks["key-1"]])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def refused(provider: OpenIdProvider, rogue: OpenIdProvider, keys: Keys) -> dict[str, str]:
    """One token per refusal case, each made through the provider where it can be."""
    alice = provider.access_token("alice")
    header, payload, signature = _parts(alice)
    public_pem = (
        keys.private["key-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    hs_header = {**header, "alg": "HS256"}
    hs_input = f"{_b64(json.dumps(hs_header).encode())}.{_b64(json.dumps(payload).encode())}"
    hs_signature = _b64(hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest())
    stranger, stranger_key = signing_key("not-published")
    now = int(time.time())
    future = {**payload, "iat": now, "nbf": now + 600, "exp": now + 1200}
    return {
        "expired": provider.access_token("bob", client_id=SHORT_CLIENT),
        "wrong audience": provider.access_token("alice", resource=OTHER_RESOURCE),
        "id token for another client": str(provider.tokens("alice", client_id=API_CLIENT)["id_token"]),
        "wrong issuer": rogue.access_token("alice"),
        "alg none": _join({**header, "alg": "none"}, payload, ""),
        "HS256 keyed with the public key": f"{hs_input}.{hs_signature}",
        "tampered payload": _join(header, {**payload, "tenant": "globex"}, signature),
        "tampered signature": f"{alice[:-6]}{'AAAAAA' if not alice.endswith('AAAAAA') else 'BBBBBB'}",
        "unknown kid": _sign(stranger_key, stranger["kid"], payload),
        "kid swapped for an unknown one": _join({**header, "kid": "made-up"}, payload, signature),
        "not yet valid": _sign(keys.private["key-1"], "key-1", future),
        "no tenant claim": provider.access_token("nobody"),
        "not a JWT": "abc.def.ghi",
        "logout token type": jwt.encode(
            payload, keys.private["key-1"], algorithm="RS256", headers={"kid": "key-1", "typ": "logout+jwt"}
        ),
    }


MATRIX = [
    ("expired", "auth.token_expired"),
    ("wrong audience", "auth.token_audience"),
    ("id token for another client", "auth.token_audience"),
    ("wrong issuer", "auth.token_issuer"),
    ("alg none", "auth.token_algorithm"),
    ("HS256 keyed with the public key", "auth.token_algorithm"),
    ("tampered payload", "auth.token_signature"),
    ("tampered signature", "auth.token_signature"),
    ("unknown kid", "auth.token_unknown_key"),
    ("kid swapped for an unknown one", "auth.token_unknown_key"),
    ("not yet valid", "auth.token_not_yet_valid"),
    ("no tenant claim", "auth.token_claims"),
    ("not a JWT", "auth.token_invalid"),
    ("logout token type", "auth.token_type"),
]


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_a_valid_token_sees_exactly_its_principals_documents(
    matrix_app: SsoApp, provider: OpenIdProvider, user: str
):
    token = provider.access_token(user)
    assert matrix_app.visible(token) == VISIBLE[user]
    # Search is filtered the same way: every document says "handbook".
    response = matrix_app.client.post(
        "/v1/search", json={"query": "handbook", "k": 20}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    found = {hit["title"] for hit in response.json()["hits"]}
    assert found == VISIBLE[user]


def test_an_id_token_for_the_web_client_is_accepted(matrix_app: SsoApp, provider: OpenIdProvider):
    id_token = str(provider.tokens("bob", client_id=WEB_CLIENT)["id_token"])
    assert jwt.decode(id_token, options={"verify_signature": False})["aud"] == WEB_CLIENT
    assert matrix_app.visible(id_token) == VISIBLE["bob"]


def test_api_keys_still_work_beside_tokens(matrix_app: SsoApp):
    key, _ = matrix_app.fathom.keys.create(tenant="acme", user="bob", groups=["sales"])
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        response = matrix_app.client.get("/v1/documents", headers=headers)
        assert response.status_code == 200
        titles = {doc["title"] for doc in response.json()["documents"]}
        assert titles == VISIBLE["bob"]


@pytest.mark.parametrize(("case", "code"), MATRIX)
def test_a_refused_token_gets_401_with_a_stable_code(
    matrix_app: SsoApp, refused: dict[str, str], case: str, code: str
):
    token = refused[case]
    if case == "expired":  # 1 s lifetime plus the app's 1 s leeway
        expires = jwt.decode(token, options={"verify_signature": False})["exp"]
        time.sleep(max(0.0, expires + LEEWAY + 0.5 - time.time()))
    response = matrix_app.get("/v1/documents", token)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert token not in response.text and token.split(".")[1] not in error["message"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert 'resource_metadata="http://testserver/.well-known/oauth-protected-resource"' in challenge


def test_every_matrix_case_is_covered(refused: dict[str, str]):
    assert {case for case, _ in MATRIX} == set(refused)


def test_missing_credentials_name_the_protected_resource_metadata(matrix_app: SsoApp):
    response = matrix_app.client.get("/v1/documents")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.missing_key"
    challenge = response.headers["www-authenticate"]
    assert "resource_metadata=" in challenge and "error=" not in challenge


def test_each_subject_has_its_own_request_bucket(sso_app: Callable[..., SsoApp], provider: OpenIdProvider):
    app = sso_app(provider, seed=False, rate_limit_per_minute=60, rate_limit_burst=2)
    alice, bob = provider.access_token("alice"), provider.access_token("bob")
    assert [app.get("/v1/documents", alice).status_code for _ in range(2)] == [200, 200]
    refused = app.get("/v1/documents", alice)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit.requests"
    # Signing in again gives a new token but the same subject: the same bucket.
    assert app.get("/v1/documents", provider.access_token("alice")).status_code == 429
    assert app.get("/v1/documents", bob).status_code == 200


def test_made_up_kids_do_not_make_fathom_fetch_the_keys_again(
    sso_app: Callable[..., SsoApp], provider: OpenIdProvider
):
    app = sso_app(provider, seed=False, oidc_jwks_min_refresh_seconds=60)
    assert app.get("/v1/documents", provider.access_token("alice")).status_code == 200
    assert app.fetches() == 1
    _, stranger_key = signing_key("unused")
    claims = jwt.decode(provider.access_token("alice"), options={"verify_signature": False})
    for _ in range(25):
        forged = _sign(stranger_key, uuid.uuid4().hex, claims)
        response = app.get("/v1/documents", forged)
        assert response.json()["error"]["code"] == "auth.token_unknown_key"
    assert app.fetches() == 1


@pytest.mark.slow
def test_issuer_key_rotation_is_picked_up_without_a_restart(sso_app: Callable[..., SsoApp], tmp_path: Path):
    first, _ = signing_key("rotation-1")
    issuer = OpenIdProvider(tmp_path / "rotating", keys=[first])
    try:
        app = sso_app(issuer, oidc_jwks_min_refresh_seconds=1)
        old = issuer.access_token("carol")
        assert jwt.get_unverified_header(old)["kid"] == "rotation-1"
        assert app.visible(old) == VISIBLE["carol"]
        # The issuer rotates: a new key signs, the old one is still published.
        second, _ = signing_key("rotation-2")
        issuer.config.keys = [second, first]
        issuer.reload()
        new = issuer.access_token("alice")
        assert jwt.get_unverified_header(new)["kid"] == "rotation-2"
        time.sleep(1.1)  # the least time between two key fetches in this app
        assert app.visible(new) == VISIBLE["alice"]
        assert app.visible(old) == VISIBLE["carol"]
        assert app.fetches() == 2
        # The provider goes away: keys already fetched keep verifying its tokens.
        issuer.stop()
        assert app.visible(new) == VISIBLE["alice"]
    finally:
        issuer.stop()


def test_an_unreachable_issuer_is_a_503_not_a_401(sso_app: Callable[..., SsoApp], provider: OpenIdProvider):
    token = provider.access_token("alice")
    app = sso_app(provider, seed=False)
    # Point a second app at a port nobody listens on: same token, no keys to check it with.
    down = sso_app(provider, seed=False, oidc_issuer=f"http://127.0.0.1:{free_port()}")
    response = down.get("/v1/documents", token)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "auth.issuer_unavailable"
    assert "retry-after" in response.headers
    assert app.get("/v1/documents", token).status_code == 200
