"""Single sign-on settings that fathom refuses at start, and what a service without SSO shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fathom import Fathom
from fathom.config import load_settings
from fathom.errors import ConfigError
from fathom.service import create_app
from fathom.service.oidc import ClaimMapping
from fathom.web import CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"oidc_issuer": "http://idp.example.com"}, "must use https"),
        ({"oidc_issuer": "http://idp.example.com", "oidc_allow_http_loopback": True}, "must use https"),
        ({"oidc_issuer": "ftp://idp.example.com"}, "must be an https URL"),
        ({"oidc_issuer": "https://user:pw@idp.example.com"}, "no credentials"),
        ({"oidc_issuer": "https://idp.example.com/realms/acme/"}, "without a trailing /"),
        ({"oidc_issuer": "https://idp.example.com"}, "oidc_audience must name at least one audience"),
        ({"oidc_algorithms": ["none"]}, "oidc_algorithms"),
        ({"oidc_algorithms": ["HS256"]}, "oidc_algorithms"),
        ({"oidc_algorithms": []}, "oidc_algorithms"),
        ({"oidc_role_values": {"boss": "owner"}}, "oidc_role_values"),
        ({"public_url": "fathom.example.com"}, "public_url"),
    ],
)
def test_unsafe_or_incomplete_sso_settings_are_refused(
    tmp_path: Path, settings: dict[str, Any], problem: str
):
    with pytest.raises(ConfigError, match=problem):
        load_settings(home=tmp_path, **settings)


def test_loopback_http_issuers_are_allowed_only_when_asked(tmp_path: Path):
    for host in ("127.0.0.1:8080", "[::1]:8080", "localhost:8080"):
        settings = load_settings(
            home=tmp_path,
            oidc_issuer=f"http://{host}",
            oidc_audience=["fathom"],
            oidc_allow_http_loopback=True,
        )
        assert settings.oidc_issuer == f"http://{host}"
    with pytest.raises(ConfigError, match="must use https"):
        load_settings(home=tmp_path, oidc_issuer="http://127.0.0.1:8080", oidc_audience=["fathom"])


def test_without_an_issuer_nothing_about_sso_is_published(tmp_path: Path):
    with (
        Fathom(home=tmp_path / "home", embedder="hash:64") as fathom,
        TestClient(create_app(fathom=fathom)) as client,
    ):
        assert client.get("/auth/config").json() == {"sso": None}
        for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
            assert client.get(path).status_code == 404
        assert client.get("/").headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        refused = client.get("/v1/documents", headers={"Authorization": "Bearer a.b.c"})
        assert refused.json()["error"]["code"] == "auth.invalid_key"
        assert refused.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({"role": "admin"}, "admin"),
        ({"role": ["reader", "editor"]}, "editor"),
        ({"role": "fathom-admins"}, "admin"),
        ({"role": "owner"}, None),
        ({}, None),
        ({"realm_access": {"roles": ["editor"]}}, None),
    ],
)
def test_the_role_claim_maps_to_the_highest_known_role(claims: dict[str, Any], role: str | None):
    mapping = ClaimMapping(role_values={"fathom-admins": "admin"})
    assert mapping.role(claims) == role


def test_claims_are_read_by_dotted_path_when_no_claim_has_the_dotted_name():
    mapping = ClaimMapping(
        tenant_claim="https://fathom.example.com/tenant",
        user_claim="preferred_username",
        groups_claim="realm_access.groups",
        role_claim="resource_access.fathom.roles",
    )
    claims = {
        "https://fathom.example.com/tenant": "acme",
        "preferred_username": "alice",
        "realm_access": {"groups": ["eng", "ops", 7, "eng"]},
        "resource_access": {"fathom": {"roles": ["admin"]}},
    }
    principal, role = mapping.identity(claims)
    assert (principal.tenant, principal.user, principal.groups, role) == (
        "acme",
        "alice",
        ("eng", "ops"),
        "admin",
    )
    assert principal.role == "admin" and principal.admin


@pytest.mark.parametrize(
    ("claims", "default_role", "role"),
    [
        ({"sub": "alice", "tenant": "acme"}, "reader", "reader"),
        ({"sub": "alice", "tenant": "acme", "role": "owner"}, "reader", "reader"),
        ({"sub": "alice", "tenant": "acme"}, "editor", "editor"),
        ({"sub": "alice", "tenant": "acme", "role": "editor"}, "reader", "editor"),
        ({"sub": "alice", "tenant": "acme", "role": ["reader", "admin"]}, "reader", "admin"),
    ],
)
def test_the_principal_gets_the_claimed_role_else_the_default_role(
    claims: dict[str, Any], default_role: str, role: str
):
    principal, _ = ClaimMapping(default_role=default_role).identity(claims)
    assert principal.role == role and principal.admin == (role == "admin")


def test_a_fixed_tenant_ignores_the_tenant_claim():
    principal, _ = ClaimMapping(tenant="acme").identity({"sub": "alice", "tenant": "globex", "groups": "eng"})
    assert (principal.tenant, principal.user, principal.groups) == ("acme", "alice", ("eng",))
