"""The OpenID Provider as the service sees it: its discovery document and its signing keys.

Both are fetched over HTTPS (http only for a loopback issuer, and only when
``oidc_allow_http_loopback`` says so), never follow redirects, are capped in size, and are kept
in memory per process:

- Discovery and keys are kept ``oidc_jwks_cache_seconds``; the first token after that fetches
  them again.
- A token whose ``kid`` is not among the kept keys fetches the keys again (the issuer rotated
  them), at most once per ``oidc_jwks_min_refresh_seconds``: tokens with made-up ``kid`` values
  cannot make fathom hammer the provider; every other such token is refused from the cache.
- A failed fetch keeps what is held (and is logged); with nothing held, requests answer 503
  ``auth.issuer_unavailable`` until a fetch succeeds.

Only public signature keys are kept: RSA and EC keys whose ``use`` (when given) is ``sig``.
Symmetric (``oct``) keys are never used, so a token cannot be verified with HMAC.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from fathom.config import oidc_url_problem
from fathom.errors import BackendUnavailable

__all__ = ["IssuerKeys", "IssuerMetadata"]

log = structlog.get_logger(__name__)

_MAX_DOCUMENT_BYTES = 512 * 1024
_MAX_KEYS = 100
_KEY_TYPES = frozenset({"RSA", "EC"})
# Private and symmetric members are dropped: only the public key is ever needed.
_SECRET_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

Observer = Callable[[str, str], None]


class _FetchFailed(Exception):
    """A discovery or key document could not be fetched or is not usable (reason for the log)."""


@dataclass(frozen=True, slots=True)
class IssuerMetadata:
    """What fathom uses from the provider's discovery document."""

    issuer: str
    jwks_uri: str
    authorization_endpoint: str | None
    token_endpoint: str | None
    end_session_endpoint: str | None


def _unavailable() -> BackendUnavailable:
    return BackendUnavailable(
        "the identity provider cannot be reached; try again shortly or use an API key",
        code="auth.issuer_unavailable",
    )


class IssuerKeys:
    """The discovery document and signature keys of one issuer, cached and refreshed."""

    def __init__(
        self,
        issuer: str,
        *,
        allow_http_loopback: bool = False,
        cache_seconds: float = 3600.0,
        min_refresh_seconds: float = 30.0,
        timeout: float = 5.0,
        observe: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.issuer = issuer
        self._allow_http_loopback = allow_http_loopback
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._timeout = timeout
        self._observe = observe or (lambda _document, _outcome: None)
        self._clock = clock
        self._transport = transport
        self._lock = threading.Lock()
        self._metadata: IssuerMetadata | None = None
        self._metadata_at: float | None = None
        self._metadata_tried: float | None = None
        self._keys: dict[str, dict[str, Any]] = {}
        self._unnamed: list[dict[str, Any]] = []
        self._keys_at: float | None = None
        self._keys_tried: float | None = None

    # -- discovery --------------------------------------------------------------------------
    def metadata(self) -> IssuerMetadata:
        """The discovery document (cached).

        Raises:
            BackendUnavailable: never fetched successfully and the provider cannot be reached now.
        """
        current, fetched = self._metadata, self._metadata_at
        if current is not None and fetched is not None and self._clock() - fetched < self._cache_seconds:
            return current
        with self._lock:
            return self._metadata_locked(self._clock())

    def _metadata_locked(self, now: float) -> IssuerMetadata:
        fresh = self._metadata_at is not None and now - self._metadata_at < self._cache_seconds
        if self._metadata is not None and fresh:
            return self._metadata
        if not self._may_try(self._metadata_tried, now):
            if self._metadata is None:
                raise _unavailable()
            return self._metadata
        self._metadata_tried = now
        try:
            self._metadata = self._fetch_metadata()
            self._metadata_at = now
            self._observe("discovery", "ok")
        except _FetchFailed as failure:
            self._observe("discovery", "failed")
            log.warning("oidc.discovery_failed", issuer=self.issuer, reason=str(failure))
            if self._metadata is None:
                raise _unavailable() from None
        return self._metadata

    def _fetch_metadata(self) -> IssuerMetadata:
        document = self._get_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
        # OpenID Connect Discovery 1.0, 4.3: the document's issuer must be the one asked for.
        if document.get("issuer") != self.issuer:
            raise _FetchFailed("the discovery document names another issuer")
        endpoints: dict[str, str | None] = {}
        for name in ("jwks_uri", "authorization_endpoint", "token_endpoint", "end_session_endpoint"):
            value = document.get(name)
            if value is not None and (not isinstance(value, str) or self._url_problem(value)):
                raise _FetchFailed(f"the discovery document's {name} is not an allowed URL")
            endpoints[name] = value
        jwks_uri = endpoints.pop("jwks_uri")
        if jwks_uri is None:
            raise _FetchFailed("the discovery document has no jwks_uri")
        return IssuerMetadata(issuer=self.issuer, jwks_uri=jwks_uri, **endpoints)

    # -- keys ---------------------------------------------------------------------------------
    def signing_key(self, kid: str | None) -> dict[str, Any] | None:
        """The public JWK that signs tokens with this ``kid`` (None: the issuer publishes none).

        A token without ``kid`` is matched only when the issuer publishes exactly one key.

        Raises:
            BackendUnavailable: no keys were ever fetched and the provider cannot be reached now.
        """
        now = self._clock()
        if self._keys_at is not None and now - self._keys_at < self._cache_seconds:
            found = self._find(kid)
            if found is not None:
                return found
        with self._lock:
            now = self._clock()
            fresh = self._keys_at is not None and now - self._keys_at < self._cache_seconds
            found = self._find(kid)
            if found is not None and fresh:
                return found
            if self._may_try(self._keys_tried, now):
                self._keys_tried = now
                reason = "first" if self._keys_at is None else "expired" if not fresh else "unknown_kid"
                self._refresh_keys(now, reason=reason)
            elif self._keys_at is None:
                raise _unavailable()
            return self._find(kid)

    def _refresh_keys(self, now: float, *, reason: str) -> None:
        try:
            metadata = self._metadata_locked(now)
        except BackendUnavailable:
            if self._keys_at is None:
                raise
            return
        try:
            keys, unnamed = self._parse_keys(self._get_json(metadata.jwks_uri))
        except _FetchFailed as failure:
            self._observe("jwks", "failed")
            log.warning("oidc.keys_failed", issuer=self.issuer, reason=str(failure))
            if self._keys_at is None:
                raise _unavailable() from None
            return
        self._keys, self._unnamed, self._keys_at = keys, unnamed, now
        self._observe("jwks", "ok")
        log.info("oidc.keys_fetched", issuer=self.issuer, keys=len(keys) + len(unnamed), reason=reason)

    def _find(self, kid: str | None) -> dict[str, Any] | None:
        if kid is not None:
            return self._keys.get(kid)
        every = [*self._keys.values(), *self._unnamed]
        return every[0] if len(every) == 1 else None

    @staticmethod
    def _parse_keys(document: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise _FetchFailed("the key set has no keys list")
        keys: dict[str, dict[str, Any]] = {}
        unnamed: list[dict[str, Any]] = []
        for entry in entries[:_MAX_KEYS]:
            if not isinstance(entry, dict) or entry.get("kty") not in _KEY_TYPES:
                continue
            if entry.get("use", "sig") != "sig":
                continue
            public = {name: value for name, value in entry.items() if name not in _SECRET_MEMBERS}
            kid = public.get("kid")
            if isinstance(kid, str):
                keys.setdefault(kid, public)
            elif kid is None:
                unnamed.append(public)
        return keys, unnamed

    # -- fetching -----------------------------------------------------------------------------
    def _may_try(self, tried: float | None, now: float) -> bool:
        return tried is None or now - tried >= self._min_refresh

    def _url_problem(self, url: str) -> str | None:
        return oidc_url_problem(url, allow_http_loopback=self._allow_http_loopback)

    def _get_json(self, url: str) -> dict[str, Any]:
        problem = self._url_problem(url)
        if problem:
            raise _FetchFailed(f"URL {problem}")
        try:
            client = httpx.Client(timeout=self._timeout, follow_redirects=False, transport=self._transport)
            with client, client.stream("GET", url, headers={"Accept": "application/json"}) as response:
                if response.status_code != 200:
                    raise _FetchFailed(f"HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_DOCUMENT_BYTES:
                        raise _FetchFailed("the document is too large")
        except httpx.HTTPError as exc:
            raise _FetchFailed(type(exc).__name__) from None
        try:
            document = json.loads(bytes(body))
        except ValueError:
            raise _FetchFailed("the document is not JSON") from None
        if not isinstance(document, dict):
            raise _FetchFailed("the document is not a JSON object")
        return document
