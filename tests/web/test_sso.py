"""The web page signs in through a real OpenID Provider (oidc-provider on 127.0.0.1): the
authorization-code flow with PKCE, from the provider's own login page, then a question asked
with the token; silent renewal with the refresh token; and a pasted API key still works."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fathom import Fathom
from tests.oidc.provider import RESOURCE, WEB_CLIENT, OpenIdProvider, signing_key
from tests.service.server import ServerProcess, free_port
from tests.web.conftest import PAGE_ERRORS, latest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Access tokens of the page's client live 64 s: the page renews them a minute before expiry,
# so a renewal happens a few seconds after sign-in.
WEB_TOKEN_SECONDS = 64
FAILOVER = (
    "# Database failover\n\n"
    "Promote the standby replica with pg_promote, then repoint the service address to it. "
    "The acme failover drill happens every quarter.\n"
)
GLOBEX_FAILOVER = (
    "# Globex failover\n\nGlobex promotes the standby replica by calling the vendor hotline MARMALADE-4471.\n"
)


@dataclass
class SsoSite:
    server: ServerProcess
    provider: OpenIdProvider
    bob_key: str

    @property
    def url(self) -> str:
        return self.server.url


def _upload(url: str, key: str, **body: Any) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    accepted = httpx.post(f"{url}/v1/documents", json=body, headers=headers, timeout=30)
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/jobs/{accepted.json()['job_id']}", headers=headers).json()
        if job["status"] == "succeeded":
            return
        assert job["status"] != "failed", job
        time.sleep(0.1)
    raise AssertionError("upload job did not finish")


@pytest.fixture(scope="module")
def sso_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SsoSite]:
    root = tmp_path_factory.mktemp("web-sso")
    port = free_port()
    page = f"http://127.0.0.1:{port}/"
    jwk, _ = signing_key("web-1")
    provider = OpenIdProvider(
        root / "provider", keys=[jwk], web_redirects=[page], access_token_ttl={WEB_CLIENT: WEB_TOKEN_SECONDS}
    )
    server = None
    try:
        with Fathom(home=root / "home", embedder="hash:64") as fathom:
            acme, _ = fathom.keys.create(tenant="acme", user="seeder", admin=True)
            globex, _ = fathom.keys.create(tenant="globex", user="seeder", admin=True)
            bob, _ = fathom.keys.create(tenant="acme", user="bob", groups=["sales"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")}
        env.update(
            {
                "FATHOM_EMBEDDER": "hash:64",
                "FATHOM_LOG_LEVEL": "WARNING",
                "FATHOM_RATE_LIMIT_PER_MINUTE": "0",
                "FATHOM_OIDC_ISSUER": provider.issuer,
                "FATHOM_OIDC_AUDIENCE": json.dumps([RESOURCE]),
                "FATHOM_OIDC_ALLOW_HTTP_LOOPBACK": "true",
                "FATHOM_OIDC_CLIENT_ID": WEB_CLIENT,
                "FATHOM_OIDC_RESOURCE": RESOURCE,
                "FATHOM_OIDC_SCOPES": json.dumps(["openid", "profile", "fathom"]),
            }
        )
        server = ServerProcess(root / "home", env, port=port, log=root / "serve.log")
        server.wait_ready(timeout=120)
        _upload(
            server.url,
            acme,
            text=FAILOVER,
            source="runbooks/failover.md",
            title="Failover runbook",
            acl={"groups": ["eng"]},
        )
        _upload(
            server.url, globex, text=GLOBEX_FAILOVER, source="globex/failover.md", title="Globex failover"
        )
        yield SsoSite(server, provider, bob)
    finally:
        if server is not None:
            server.stop()
        provider.stop()


def _session(page: Any) -> dict[str, Any] | None:
    raw = page.evaluate("sessionStorage.getItem('fathom.sso.session')")
    return json.loads(raw) if raw else None


def test_sign_in_through_the_provider_then_ask(browser: Any, sso_site: SsoSite):
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    page.on("pageerror", lambda error: PAGE_ERRORS.append(str(error)))
    response = page.goto(sso_site.url + "/")
    assert response is not None
    # The page may call the provider's token endpoint, and nothing else outside its origin.
    assert f"connect-src 'self' {sso_site.provider.issuer};" in response.headers["content-security-policy"]
    expect(page.get_by_role("alert")).to_contain_text("Sign in to start")

    # Sign in on the provider's own login page (authorization code + PKCE; no client secret).
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{sso_site.provider.issuer}/interaction/**")
    authorize = page.evaluate("document.referrer")  # nothing leaks: the page sends no referrer
    assert authorize == ""
    page.locator("input[name=login]").fill("alice")
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.wait_for_url(sso_site.url + "/")
    expect(page.locator("#account-name")).to_have_text("Signed in as Alice Acme")
    assert page.url == sso_site.url + "/"  # the code is gone from the address bar
    session = _session(page)
    assert session is not None and session["refresh_token"]
    assert page.evaluate("localStorage.length") == 0

    # Ask: alice (acme, group eng) is answered from acme's runbook, never from globex's.
    page.get_by_label("Ask your documents").fill("How do we promote the standby replica?")
    with page.expect_response(lambda r: r.url.endswith("/messages")) as asked:
        page.locator("#ask-button").click()
    assert asked.value.status == 200
    assert asked.value.request.headers["authorization"] == f"Bearer {session['token']}"
    expect(latest(page)).to_contain_text("pg_promote", timeout=30_000)
    expect(latest(page, "answer-sources")).to_contain_text("Failover runbook")
    assert "MARMALADE" not in page.locator("#thread").inner_text()

    # Silent renewal: a minute before expiry the page swaps in a new token (refresh grant).
    page.wait_for_function(
        "old => JSON.parse(sessionStorage.getItem('fathom.sso.session')).token !== old",
        arg=session["token"],
        timeout=(WEB_TOKEN_SECONDS - 50) * 1000,
    )
    renewed = _session(page)
    assert renewed is not None and renewed["expires_at"] > session["expires_at"]
    with page.expect_response(lambda r: r.url.endswith("/v1/documents")) as listed:
        page.get_by_role("button", name="Documents").click()
    assert listed.value.status == 200
    assert listed.value.request.headers["authorization"] == f"Bearer {renewed['token']}"
    expect(page.locator("#doc-list")).to_contain_text("Failover runbook")
    expect(page.locator("#doc-list")).not_to_contain_text("Globex")

    # A pasted API key still works, and replaces the sign-in in this tab.
    page.get_by_role("button", name="API key").click()
    page.get_by_label("Your fathom API key").fill(sso_site.bob_key)
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    assert _session(page) is None
    with page.expect_response(lambda r: r.url.endswith("/v1/documents")) as listed_by_key:
        page.get_by_role("button", name="Refresh").click()
    assert listed_by_key.value.request.headers["authorization"] == f"Bearer {sso_site.bob_key}"
    expect(page.locator("#doc-status")).not_to_contain_text("not accepted")
    expect(page.locator("#doc-list")).not_to_contain_text("Failover runbook")  # bob is not in eng
    context.close()
