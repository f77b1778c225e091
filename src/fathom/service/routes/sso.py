"""Single sign-on, as clients discover it (no API key; nothing here is secret).

- ``GET /auth/config``: what the web page needs to sign in with the authorization-code flow and
  PKCE (issuer, public client id, endpoints, scopes); ``{"sso": null}`` when SSO is off for the
  page.
- ``GET /.well-known/oauth-protected-resource`` and ``.../mcp``: OAuth 2.0 Protected Resource
  Metadata (RFC 9728) for the API and for ``/mcp``, so MCP clients find the issuer from the
  ``resource_metadata`` of a 401's ``WWW-Authenticate`` instead of failing on a bare ``Bearer``.
  404 when no issuer is configured.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fathom.errors import NotFound
from fathom.service.deps import ServiceDep
from fathom.service.oidc import OidcAuthenticator, public_base_url

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_NO_STORE = {"Cache-Control": "no-store"}


def _required(service: ServiceDep) -> OidcAuthenticator:
    if service.oidc is None:
        raise NotFound("single sign-on is not configured", code="route.not_found")
    return service.oidc


@router.get("/auth/config")
def auth_config(request: Request, service: ServiceDep) -> JSONResponse:
    """The page's sign-in settings; 503 ``auth.issuer_unavailable`` when discovery fails."""
    oidc = service.oidc
    settings = service.settings
    if oidc is None or settings.oidc_client_id is None:
        return JSONResponse({"sso": None}, headers=_NO_STORE)
    metadata = oidc.metadata()
    sso: dict[str, Any] = {
        "issuer": oidc.issuer,
        "client_id": settings.oidc_client_id,
        "authorization_endpoint": metadata.authorization_endpoint,
        "token_endpoint": metadata.token_endpoint,
        "end_session_endpoint": metadata.end_session_endpoint,
        "scope": " ".join(settings.oidc_scopes),
        "resource": settings.oidc_resource,
        "token": settings.oidc_web_token,
        "redirect_uri": public_base_url(request, settings) + "/",
    }
    return JSONResponse({"sso": sso}, headers=_NO_STORE)


@router.get("/.well-known/oauth-protected-resource")
def protected_resource(request: Request, service: ServiceDep) -> JSONResponse:
    oidc = _required(service)
    return JSONResponse(oidc.protected_resource(public_base_url(request, service.settings)))


@router.get("/.well-known/oauth-protected-resource/mcp")
def protected_resource_mcp(request: Request, service: ServiceDep) -> JSONResponse:
    oidc = _required(service)
    return JSONResponse(oidc.protected_resource(public_base_url(request, service.settings) + "/mcp"))
