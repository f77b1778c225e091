"""Dependencies of the routes: the service, its settings and fathom, and the calling principal.

Routes take what they need through these ``Annotated`` aliases (``PrincipalDep``,
``FathomDep`` ...) so tests can build an app around any settings and any fathom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from fathom.api import Fathom
from fathom.config import Settings
from fathom.domain import Principal
from fathom.errors import LimitExceeded, Unauthorized
from fathom.service.audit import record_auth_failure
from fathom.service.limits import Buckets
from fathom.service.metrics import Metrics
from fathom.service.oidc import OidcAuthenticator
from fathom.service.worker import JobWorkers

__all__ = [
    "Caller",
    "CallerDep",
    "FathomDep",
    "PrincipalDep",
    "Service",
    "ServiceDep",
    "SettingsDep",
]


@dataclass(slots=True)
class Service:
    """Everything one serve process shares between requests."""

    settings: Settings
    fathom: Fathom
    buckets: Buckets
    metrics: Metrics
    workers: JobWorkers
    # Single sign-on: OIDC tokens beside API keys (None when no issuer is configured).
    oidc: OidcAuthenticator | None = None

    def charge_answer_tokens(self, key_id: str, tokens: int) -> None:
        """Count an answer's tokens against the key's answer budget (may go into debt)."""
        per_minute = self.settings.answer_tokens_per_minute
        if per_minute and tokens > 1:
            self.buckets.charge(f"answer:{key_id}", per_minute, per_minute / 60, tokens - 1)

    def take_answer_budget(self, key_id: str) -> None:
        """Refuse an answer while the key's answer-token budget is spent.

        Raises:
            LimitExceeded: no budget left now (``retry_after`` says when there is).
        """
        per_minute = self.settings.answer_tokens_per_minute
        if not per_minute:
            return
        wait = self.buckets.take(f"answer:{key_id}", per_minute, per_minute / 60, 1)
        if wait > 0:
            self.metrics.rate_limited.labels(bucket="answer_tokens").inc()
            raise LimitExceeded(
                "this key used its answer tokens for now; retry later",
                code="rate_limit.answer_tokens",
                retry_after=wait,
            )


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: the API key's id (for a token: its subject's id) and its principal;
    ``subject`` is a token's ``sub`` (None for API keys), as the audit log names the caller."""

    key_id: str
    principal: Principal
    subject: str | None = None


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def get_settings(service: ServiceDep) -> Settings:
    return service.settings


def get_fathom(service: ServiceDep) -> Fathom:
    return service.fathom


SettingsDep = Annotated[Settings, Depends(get_settings)]
FathomDep = Annotated[Fathom, Depends(get_fathom)]

_bearer = HTTPBearer(
    auto_error=False,
    description="`Authorization: Bearer <API key>`, or an OIDC access or ID token (JWT) when single "
    "sign-on is configured.",
)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key, as a header.")


def authenticate(
    request: Request,
    service: ServiceDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Caller:
    """Check the API key (or OIDC token) and take one token from its request bucket.

    A bearer credential shaped like a JWT is verified as an OIDC token when single sign-on is
    configured; its bucket is its subject's (issuer and ``sub``), not shared with other people.

    Raises:
        Unauthorized: no key, or not a valid one (``auth.token_*`` for refused tokens).
        LimitExceeded: the key made too many requests (``retry_after`` set).
        BackendUnavailable: the identity provider's keys cannot be fetched (never fetched before).
    """
    key = bearer.credentials if bearer is not None else api_key
    with service.fathom.telemetry.stage("auth") as stage:
        if not key:
            raise Unauthorized("a valid API key is required", code="auth.missing_key")
        subject = None
        token = service.oidc is not None and bearer is not None and service.oidc.accepts(key)
        try:
            if service.oidc is not None and token:
                identity = service.oidc.authenticate(key)
                key_id, principal, subject = identity.subject_id, identity.principal, identity.subject
            else:
                key_id, principal = service.fathom.keys.authenticate(key)
        except Unauthorized as exc:
            client = request.client.host if request.client is not None else None
            record_auth_failure(service, key, token, exc.code, client)
            raise
        stage.set(**{"fathom.key_id": key_id, "fathom.tenant": principal.tenant})
    request.scope.setdefault("state", {})["key_id"] = key_id
    per_minute = service.settings.rate_limit_per_minute
    if per_minute:
        wait = service.buckets.take(f"requests:{key_id}", service.settings.rate_limit_burst, per_minute / 60)
        if wait > 0:
            service.metrics.rate_limited.labels(bucket="requests").inc()
            raise LimitExceeded(
                "too many requests for this key; retry later", code="rate_limit.requests", retry_after=wait
            )
    return Caller(key_id=key_id, principal=principal, subject=subject)


def principal_of(caller: Annotated[Caller, Depends(authenticate)]) -> Principal:
    return caller.principal


CallerDep = Annotated[Caller, Depends(authenticate)]
PrincipalDep = Annotated[Principal, Depends(principal_of)]
