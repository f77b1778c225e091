"""The audit trail of single sign-on users, against the real OpenID Provider: a signed-in user's
search is listed at GET /v1/audit with the token's subject and the documents it returned, and a
refused token is recorded without the token."""

from __future__ import annotations

from collections.abc import Callable

import jwt
import pytest

from tests.oidc.conftest import SsoApp
from tests.oidc.provider import OpenIdProvider

pytestmark = [pytest.mark.integration]


def test_an_sso_users_search_is_listed_with_their_subject_and_the_returned_documents(
    sso_app: Callable[..., SsoApp], provider: OpenIdProvider
):
    app = sso_app(provider)
    carol = provider.access_token("carol")  # globex admin (role claim)
    subject = jwt.decode(carol, options={"verify_signature": False})["sub"]
    searched = app.client.post(
        "/v1/search",
        json={"query": "handbook page", "k": 10},
        headers={"Authorization": f"Bearer {carol}", "X-Request-ID": "sso-search-1"},
    )
    assert searched.status_code == 200, searched.text
    returned = list(dict.fromkeys(hit["doc_id"] for hit in searched.json()["hits"]))
    assert set(returned) == {app.doc_ids["globex-open"], app.doc_ids["globex-eng"]}

    listing = app.get("/v1/audit", carol, params={"action": "search"})
    assert listing.status_code == 200, listing.text
    [event] = listing.json()["events"]
    assert event["actor"] == {"kind": "token", "id": subject, "user": "carol"}
    assert event["tenant"] == "globex" and event["request_id"] == "sso-search-1"
    assert event["details"]["doc_ids"] == returned
    assert "query" not in event["details"]

    # An editor of acme may search but not read the trail; acme's trail does not show carol.
    alice = provider.access_token("alice")
    refused = app.get("/v1/audit", alice)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "audit.admin_only"
    acme = app.fathom.audit.events(tenant="acme", action="search")
    assert acme == []


def test_a_refused_token_is_recorded_without_the_token(
    sso_app: Callable[..., SsoApp], provider: OpenIdProvider
):
    app = sso_app(provider, seed=False)
    token = provider.access_token("bob")
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-6]}{'A' * 6 if not signature.endswith('A' * 6) else 'B' * 6}"
    assert app.get("/v1/documents", tampered).status_code == 401

    [event] = app.fathom.audit.events(tenant="", action="auth.failed")
    assert event.outcome == "auth.token_signature"
    assert event.details["credential"] == "token" and event.actor_kind == "unknown"
    leaked = [
        p for p in app.fathom.home.rglob("*") if p.is_file() and signature[:40].encode() in p.read_bytes()
    ]
    assert leaked == []
