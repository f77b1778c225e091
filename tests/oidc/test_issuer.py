"""The issuer's discovery document and keys: fetched from a real OpenID Provider over HTTP, kept,
refreshed on expiry or an unknown kid (never more often than allowed), kept when the provider is
down, and refused when the provider claims to be another issuer. A settable clock stands in for
waiting."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fathom.errors import BackendUnavailable
from fathom.service.issuer import IssuerKeys
from tests.oidc.conftest import Keys
from tests.oidc.provider import OpenIdProvider, signing_key
from tests.service.server import free_port

pytestmark = [pytest.mark.integration]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _keys(issuer: str, clock: Clock, fetches: Counter[tuple[str, str]]) -> IssuerKeys:
    return IssuerKeys(
        issuer,
        allow_http_loopback=True,
        cache_seconds=3600,
        min_refresh_seconds=30,
        observe=lambda document, outcome: fetches.update([(document, outcome)]),
        clock=clock,
    )


def test_keys_are_kept_then_refreshed_on_expiry_and_on_an_unknown_kid(provider: OpenIdProvider, keys: Keys):
    clock, fetches = Clock(), Counter[tuple[str, str]]()
    issuer = _keys(provider.issuer, clock, fetches)
    key = issuer.signing_key("key-1")
    assert key is not None and key["kid"] == "key-1" and "d" not in key  # the public part only
    assert fetches == {("discovery", "ok"): 1, ("jwks", "ok"): 1}
    for _ in range(5):
        assert issuer.signing_key("key-1") is not None
    assert fetches[("jwks", "ok")] == 1
    # An unknown kid right after a fetch: refused from the cache, no fetch.
    assert issuer.signing_key("made-up") is None
    assert fetches[("jwks", "ok")] == 1
    # Once the least interval has passed, an unknown kid fetches again (once).
    clock.now += 31
    assert issuer.signing_key("made-up") is None
    assert issuer.signing_key("made-up-too") is None
    assert fetches[("jwks", "ok")] == 2
    # After the cache time, the next token fetches keys and discovery again.
    clock.now += 3600
    assert issuer.signing_key("key-1") is not None
    assert fetches == {("discovery", "ok"): 2, ("jwks", "ok"): 3}


def test_keys_held_outlive_the_provider_and_an_unknown_provider_is_a_503(tmp_path: Path):
    clock, fetches = Clock(), Counter[tuple[str, str]]()
    jwk, _ = signing_key("short-lived")
    temporary = OpenIdProvider(tmp_path / "temporary", keys=[jwk])
    issuer = _keys(temporary.issuer, clock, fetches)
    try:
        assert issuer.signing_key("short-lived") is not None
    finally:
        temporary.stop()
    clock.now += 4000  # past the cache time: the fetch fails, the keys held stay in use
    assert issuer.signing_key("short-lived") is not None
    assert fetches[("discovery", "failed")] == 1
    assert issuer.metadata().token_endpoint is not None

    never = _keys(f"http://127.0.0.1:{free_port()}", clock, fetches)
    with pytest.raises(BackendUnavailable) as refused:
        never.signing_key("any")
    assert refused.value.code == "auth.issuer_unavailable"
    before = sum(fetches.values())
    with pytest.raises(BackendUnavailable):
        never.signing_key("any")  # within the least interval: no new attempt
    assert sum(fetches.values()) == before


def test_a_discovery_document_naming_another_issuer_is_refused(provider: OpenIdProvider):
    clock, fetches = Clock(), Counter[tuple[str, str]]()
    # The same server under another name: its document says "127.0.0.1", not "localhost".
    other_name = provider.issuer.replace("127.0.0.1", "localhost")
    with pytest.raises(BackendUnavailable):
        _keys(other_name, clock, fetches).signing_key("key-1")
    assert fetches == {("discovery", "failed"): 1}


def test_only_https_or_allowed_loopback_urls_are_fetched(provider: OpenIdProvider):
    clock, fetches = Clock(), Counter[tuple[str, str]]()
    strict = IssuerKeys(
        provider.issuer,
        allow_http_loopback=False,
        clock=clock,
        observe=lambda document, outcome: fetches.update([(document, outcome)]),
    )
    with pytest.raises(BackendUnavailable):
        strict.signing_key("key-1")  # the provider answers on http, but http is not allowed
    assert fetches == {("discovery", "failed"): 1}
