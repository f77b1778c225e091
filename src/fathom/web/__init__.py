"""The web page of ``fathom serve``: static HTML, CSS and ES modules shipped in the package.

The page is a thin front over the HTTP API (``/v1``); it holds no logic of its own beyond
showing what the API returns. Every asset is served by fathom itself (no CDN), under a strict
Content-Security-Policy: scripts only from this origin, no inline script or style, no framing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from fathom.errors import NotFound
from fathom.web.api_docs import install_api_docs

__all__ = ["CONTENT_SECURITY_POLICY", "content_security_policy", "install_web"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The page is small and changes with fathom's version; revalidate rather than go stale.
    "Cache-Control": "no-cache",
}


def _load_assets() -> dict[str, tuple[bytes, str]]:
    """Every file of ``static/`` by name, read once: the set of servable paths is fixed."""
    assets: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in _MEDIA_TYPES:
            assets[entry.name] = (entry.read_bytes(), _MEDIA_TYPES[suffix])
    return assets


def content_security_policy(connect_sources: Sequence[str] = ()) -> str:
    """The page's policy; ``connect_sources`` are origins its scripts may call besides its own
    (the identity provider's token endpoint when the page signs in)."""
    if not connect_sources:
        return CONTENT_SECURITY_POLICY
    extra = " ".join(connect_sources)
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self';", f"connect-src 'self' {extra};")


def install_web(app: FastAPI, connect_sources: Callable[[], Sequence[str]] | None = None) -> None:
    """Serve the page at ``/`` and its assets under ``/static/`` (left out of the OpenAPI schema),
    and the API docs at ``/docs`` (Swagger UI from the package, under the same policy; the app
    is created with ``docs_url=None, redoc_url=None``).

    ``connect_sources`` gives, per request, the origins the page may call besides its own.
    """
    assets = _load_assets()
    router = APIRouter(include_in_schema=False)

    def asset(name: str) -> Response:
        if name not in assets:
            raise NotFound(f"no asset {name!r}", code="route.not_found")
        body, media_type = assets[name]
        headers = _HEADERS
        if connect_sources is not None and name == "index.html":
            policy = content_security_policy(connect_sources())
            headers = {**_HEADERS, "Content-Security-Policy": policy}
        return Response(body, media_type=media_type, headers=headers)

    @router.get("/")
    def page() -> Response:
        return asset("index.html")

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        return asset(name)

    app.include_router(router)
    install_api_docs(app, _HEADERS)
