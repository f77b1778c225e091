"""Single sign-on: OIDC tokens (JWT access or ID tokens) beside API keys, and who they stand for.

A bearer credential that is shaped like a JWT (three base64url parts, not an ``fth_`` key) is
verified here when ``oidc_issuer`` is set:

1. the header's ``alg`` must be one of ``oidc_algorithms`` (asymmetric only: ``none`` and
   ``HS*`` are never accepted, so a public key can never be used as an HMAC secret), and its
   ``typ``, when given, must be a JWT or an access-token JWT (RFC 9068);
2. the key is the issuer's published key with the token's ``kid`` (:class:`IssuerKeys` fetches
   and refreshes the issuer's JWKS), of the type the algorithm needs (RSA of at least 2048 bits,
   or EC on the algorithm's curve);
3. the signature, then ``exp``, ``nbf`` and ``iat`` (with ``oidc_leeway_seconds`` of clock skew),
   ``iss`` (exactly ``oidc_issuer``) and ``aud`` (one of ``oidc_audience``) are checked by PyJWT;
   ``exp``, ``iss``, ``aud`` and ``sub`` are required.

Every refusal is a 401 with a stable code (``auth.token_*``, listed in docs/service.md).

The claims then map to a :class:`~fathom.domain.Principal` in :class:`ClaimMapping`, the one
place that knows the claim names (``oidc_*_claim`` settings; dotted names reach into nested
objects, e.g. Keycloak's ``realm_access.roles``). A token's rate-limit bucket and ``key_id``
is per subject (issuer and ``sub``), so each signed-in person has their own budget.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.requests import Request

from fathom.config import Settings
from fathom.domain import ROLES, Principal
from fathom.errors import Unauthorized
from fathom.permissions import highest_role
from fathom.service.issuer import IssuerKeys, IssuerMetadata, Observer

__all__ = [
    "ROLES",
    "ClaimMapping",
    "OidcAuthenticator",
    "TokenIdentity",
    "public_base_url",
]

_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_TOKEN_TYPES = frozenset({"jwt", "at+jwt", "application/jwt", "application/at+jwt"})
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_MAX_TOKEN_CHARS = 16 * 1024
_MAX_NAME_CHARS = 255
_MAX_GROUPS = 1000
_MIN_RSA_BITS = 2048
_UNUSABLE_KEY = "the identity provider publishes this token's key in a form not accepted here"
_KEY_MISMATCH = "the token's algorithm does not match its signing key"


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who a verified token stands for.

    Attributes:
        subject_id: ``oidc_`` and 27 hex digits of a hash of issuer and ``sub``: the caller's
            ``key_id`` (rate-limit buckets, conversation and feedback ownership, logs).
        principal: the mapped principal.
        role: the fathom role the token's role claim maps to (None: the claim is absent or names
            no known role, and the principal has ``oidc_default_role``).
        subject: the token's ``sub`` (the audit log's actor).
    """

    subject_id: str
    principal: Principal
    role: str | None
    subject: str = ""


# One sentence per refusal code; the codes are listed in docs/service.md.
_MESSAGES = {
    "auth.token_invalid": "the token is not a well-formed signed JWT",
    "auth.token_algorithm": "the token's signature algorithm is not accepted",
    "auth.token_type": "this kind of token is not accepted here",
    "auth.token_unknown_key": "the token was signed with a key its identity provider does not publish",
    "auth.token_signature": "the token's signature is not valid",
    "auth.token_expired": "the token has expired; sign in again",
    "auth.token_not_yet_valid": "the token is not valid yet; check the clocks",
    "auth.token_audience": "the token was issued for another service (audience)",
    "auth.token_issuer": "the token was issued by an identity provider not trusted here",
    "auth.token_claims": "the token lacks a required claim (exp, iss, aud or sub)",
}


def _refuse(code: str, message: str | None = None) -> Unauthorized:
    return Unauthorized(message or _MESSAGES[code], code=code)


def claim_value(claims: Mapping[str, Any], name: str) -> Any:
    """The claim ``name``: the top-level claim of that exact name, else a dotted path into
    nested objects (``realm_access.roles``); None when absent."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _name(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= _MAX_NAME_CHARS and value.isprintable():
        return value
    return None


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """How token claims become a principal: which claims hold tenant, user, groups and role."""

    tenant_claim: str = "tenant"
    tenant: str | None = None
    user_claim: str = "sub"
    groups_claim: str = "groups"
    role_claim: str = "role"
    role_values: Mapping[str, str] | None = None
    default_role: str = "reader"

    @classmethod
    def from_settings(cls, settings: Settings) -> ClaimMapping:
        return cls(
            tenant_claim=settings.oidc_tenant_claim,
            tenant=settings.oidc_tenant,
            user_claim=settings.oidc_user_claim,
            groups_claim=settings.oidc_groups_claim,
            role_claim=settings.oidc_role_claim,
            role_values=dict(settings.oidc_role_values),
            default_role=settings.oidc_default_role,
        )

    def identity(self, claims: Mapping[str, Any]) -> tuple[Principal, str | None]:
        """The principal and role of verified ``claims`` (the principal has ``default_role``
        when the role claim names no known role).

        Raises:
            Unauthorized: ``auth.token_claims`` when the tenant or user claim is missing or unusable.
        """
        tenant = self.tenant or _name(claim_value(claims, self.tenant_claim))
        if tenant is None:
            raise _refuse("auth.token_claims", f"the token has no usable tenant claim {self.tenant_claim!r}")
        user = _name(claim_value(claims, self.user_claim))
        if user is None:
            raise _refuse("auth.token_claims", f"the token has no usable user claim {self.user_claim!r}")
        role = self.role(claims)
        principal = Principal(
            tenant=tenant, user=user, groups=self.groups(claims), role=role or self.default_role
        )
        return principal, role

    def groups(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        """The groups claim as names: a list of strings, or one string naming one group."""
        value = claim_value(claims, self.groups_claim)
        items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        names = {name for item in items[:_MAX_GROUPS] if (name := _name(item)) is not None}
        return tuple(sorted(names))

    def role(self, claims: Mapping[str, Any]) -> str | None:
        """The highest fathom role the role claim names (a string or a list), through ``role_values``."""
        value = claim_value(claims, self.role_claim)
        items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        mapping = self.role_values or {}
        found = {mapping.get(item, item) for item in items if isinstance(item, str)}
        return highest_role(list(found))


class OidcAuthenticator:
    """Verifies bearer tokens of one issuer and maps them to principals."""

    def __init__(self, settings: Settings, keys: IssuerKeys, mapping: ClaimMapping | None = None) -> None:
        assert settings.oidc_issuer is not None
        self.settings = settings
        self.issuer = settings.oidc_issuer
        self.keys = keys
        self.mapping = mapping or ClaimMapping.from_settings(settings)
        self._audience = list(settings.oidc_audience)
        self._algorithms = frozenset(settings.oidc_algorithms)

    @classmethod
    def from_settings(cls, settings: Settings, observe: Observer | None = None) -> OidcAuthenticator | None:
        """The authenticator for ``settings`` (None when ``oidc_issuer`` is not set)."""
        if settings.oidc_issuer is None:
            return None
        keys = IssuerKeys(
            settings.oidc_issuer,
            allow_http_loopback=settings.oidc_allow_http_loopback,
            cache_seconds=settings.oidc_jwks_cache_seconds,
            min_refresh_seconds=settings.oidc_jwks_min_refresh_seconds,
            timeout=settings.oidc_http_timeout,
            observe=observe,
        )
        return cls(settings, keys)

    @staticmethod
    def accepts(credential: str) -> bool:
        """Whether ``credential`` is shaped like a JWT (and so is not an API key)."""
        return not credential.startswith("fth_") and bool(_JWT_SHAPE.match(credential))

    def authenticate(self, token: str) -> TokenIdentity:
        """Verify ``token`` and map its claims.

        Raises:
            Unauthorized: the token is refused (``auth.token_*`` codes).
            BackendUnavailable: the issuer's keys were never fetched and cannot be now.
        """
        claims = self.verify(token)
        principal, role = self.mapping.identity(claims)
        digest = hashlib.sha256(f"{claims['iss']}\x00{claims['sub']}".encode()).hexdigest()
        return TokenIdentity(
            subject_id=f"oidc_{digest[:27]}", principal=principal, role=role, subject=str(claims["sub"])
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of ``token`` once its signature and registered claims check out."""
        if len(token) > _MAX_TOKEN_CHARS or not _JWT_SHAPE.match(token):
            raise _refuse("auth.token_invalid")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refuse("auth.token_invalid") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise _refuse("auth.token_algorithm")
        kind = header.get("typ")
        if kind is not None and (not isinstance(kind, str) or kind.lower() not in _TOKEN_TYPES):
            raise _refuse("auth.token_type")
        if "crit" in header:
            raise _refuse("auth.token_invalid", "the token uses JWT extensions this service does not support")
        kid = header.get("kid")
        jwk = self.keys.signing_key(kid if isinstance(kid, str) else None)
        if jwk is None:
            raise _refuse("auth.token_unknown_key")
        key = _verification_key(jwk, algorithm)
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self.issuer,
                leeway=self.settings.oidc_leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_signature": True},
            )
        except jwt.PyJWTError as exc:
            raise _decode_refusal(exc) from None

    # -- what clients are told ------------------------------------------------------------------
    def metadata(self) -> IssuerMetadata:
        """The issuer's discovery document (cached; raises BackendUnavailable when unreachable)."""
        return self.keys.metadata()

    def protected_resource(self, resource: str) -> dict[str, Any]:
        """OAuth 2.0 Protected Resource Metadata (RFC 9728) for ``resource``."""
        return {
            "resource": resource,
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
            "scopes_supported": list(self.settings.oidc_scopes),
            "resource_name": "fathom",
        }

    def challenge(self, base_url: str, path: str, code: str) -> str:
        """The ``WWW-Authenticate`` value of a 401: RFC 6750 with RFC 9728's ``resource_metadata``."""
        suffix = "/mcp" if path == "/mcp" or path.startswith("/mcp/") else ""
        parts = [
            'Bearer realm="fathom"',
            f'resource_metadata="{base_url}/.well-known/oauth-protected-resource{suffix}"',
        ]
        if code.startswith("auth.token_"):
            parts.append('error="invalid_token"')
        return ", ".join(parts)


def _verification_key(jwk: dict[str, Any], algorithm: str) -> jwt.PyJWK:
    """The published key as a PyJWK bound to ``algorithm``, when key and algorithm go together."""
    family = "EC" if algorithm.startswith("ES") else "RSA"
    declared = jwk.get("alg")
    if jwk.get("kty") != family or (declared is not None and declared != algorithm):
        raise _refuse("auth.token_algorithm", _KEY_MISMATCH)
    try:
        key = jwt.PyJWK(jwk, algorithm=algorithm)
    except jwt.PyJWTError:
        raise _refuse("auth.token_unknown_key", _UNUSABLE_KEY) from None
    public = key.key
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < _MIN_RSA_BITS:
        raise _refuse("auth.token_unknown_key", "the token's signing key is too short")
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name != _CURVES.get(algorithm):
        raise _refuse("auth.token_algorithm", _KEY_MISMATCH)
    if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise _refuse("auth.token_unknown_key", _UNUSABLE_KEY)
    return key


def _decode_refusal(exc: jwt.PyJWTError) -> Unauthorized:
    """The 401 for a PyJWT error (most specific first: several are subclasses of others)."""
    refusals: Sequence[tuple[type[jwt.PyJWTError], str]] = (
        (jwt.ExpiredSignatureError, "auth.token_expired"),
        (jwt.ImmatureSignatureError, "auth.token_not_yet_valid"),
        (jwt.InvalidAudienceError, "auth.token_audience"),
        (jwt.InvalidIssuerError, "auth.token_issuer"),
        (jwt.InvalidSignatureError, "auth.token_signature"),
        (jwt.InvalidAlgorithmError, "auth.token_algorithm"),
        (jwt.MissingRequiredClaimError, "auth.token_claims"),
    )
    for error_type, code in refusals:
        if isinstance(exc, error_type):
            return _refuse(code)
    return _refuse("auth.token_invalid")


def public_base_url(request: Request, settings: Settings) -> str:
    """The service's external base URL: ``public_url``, else the one the request came in on."""
    return settings.public_url or str(request.base_url).rstrip("/")
