"""The API's interactive docs at ``/docs``: Swagger UI served by fathom itself, offline.

FastAPI's default ``/docs`` and ``/redoc`` pages load their scripts from a CDN and start Swagger
UI from an inline script, which neither works without the internet nor under the page's
Content-Security-Policy. Here the Swagger UI 5 assets (the first to read OpenAPI 3.1) come from
the ``fastapi-offline`` package's static files (under ``/docs/assets/``), the start-up script is
one of fathom's own static files, and the page carries the same policy as the web page. ReDoc is
not served: it injects ``<style>`` elements, which the policy refuses.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from fathom.errors import NotFound

__all__ = ["DOCS_ASSETS", "install_api_docs"]

# The files of Swagger UI the page uses; nothing else of the bundle is servable.
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}

_STATIC = resources.files("fastapi_offline").joinpath("static")

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fathom API docs</title>
<link rel="icon" href="/docs/assets/favicon.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""


def install_api_docs(app: FastAPI, headers: dict[str, str]) -> None:
    """Serve ``/docs`` and its Swagger UI assets with ``headers`` (the page's CSP and friends).

    The app must be created with ``docs_url=None`` and ``redoc_url=None``.
    """
    assets: dict[str, tuple[bytes, str]] = {}
    for name, media_type in DOCS_ASSETS.items():
        assets[name] = (_STATIC.joinpath(name).read_bytes(), media_type)
    page = _PAGE.format(openapi_url=app.openapi_url or "/openapi.json").encode()
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    def docs() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    @router.get("/docs/assets/{name}")
    def docs_asset(name: str) -> Response:
        if name not in assets:
            raise NotFound(f"no asset {name!r}", code="route.not_found")
        body, media_type = assets[name]
        # The bundle changes only with the package's version; a day's caching is safe.
        return Response(body, media_type=media_type, headers={**headers, "Cache-Control": "max-age=86400"})

    app.include_router(router)
