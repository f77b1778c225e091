"""How the web page is served: assets from the package, a strict CSP, no traversal, no HTML sinks."""

from __future__ import annotations

from importlib import resources

from fathom.web import CONTENT_SECURITY_POLICY


def test_the_page_and_its_assets_come_from_fathom_under_a_strict_policy(serve):
    served = serve()
    page = served.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    html = page.text
    # No inline script and nothing from another origin: every script and style is one of ours.
    assert "<script>" not in html and "http://" not in html and "https://" not in html
    for asset, media_type in (
        ("app.js", "text/javascript"),
        ("api.js", "text/javascript"),
        ("ask.js", "text/javascript"),
        ("answer.js", "text/javascript"),
        ("feedback.js", "text/javascript"),
        ("thread.js", "text/javascript"),
        ("thread.css", "text/css"),
        ("documents.js", "text/javascript"),
        ("dom.js", "text/javascript"),
        ("style.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
        ("api-docs.js", "text/javascript"),
        ("markdown.js", "text/javascript"),
    ):
        response = served.client.get(f"/static/{asset}")
        assert response.status_code == 200, asset
        assert response.headers["content-type"].startswith(media_type)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for missing in ("/static/nope.js", "/static/..%2f__init__.py", "/static/%2e%2e/__init__.py"):
        response = served.client.get(missing)
        assert response.status_code == 404, missing
        assert set(response.json()) == {"error"}
    # The page is no part of the API schema.
    assert "/" not in served.client.get("/openapi.json").json()["paths"]


def test_page_code_never_parses_strings_as_html():
    static = resources.files("fathom.web").joinpath("static")
    scripts = [entry for entry in static.iterdir() if entry.name.endswith(".js")]
    assert scripts
    for script in scripts:
        source = script.read_text(encoding="utf-8")
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert sink not in source, f"{script.name} uses {sink}"


def test_api_docs_work_offline_under_the_same_policy(serve):
    """/docs is Swagger UI served by fathom itself: no CDN, no inline script, the page's CSP."""
    served = serve()
    docs = served.client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert docs.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    html = docs.text
    assert "http://" not in html and "https://" not in html and "<script>" not in html
    for path, media_type in (
        ("/docs/assets/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/assets/swagger-ui.css", "text/css"),
        ("/docs/assets/favicon.png", "image/png"),
        ("/static/api-docs.js", "text/javascript"),
    ):
        assert path in html
        response = served.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media_type)
        assert len(response.content) > 200
    assert "SwaggerUIBundle" in served.client.get("/docs/assets/swagger-ui-bundle.js").text
    # The bundle's other files (source maps, its own index page) are not served; no traversal.
    for missing in ("/docs/assets/redoc.standalone.js", "/docs/assets/..%2f__init__.py", "/redoc"):
        assert served.client.get(missing).status_code == 404, missing
    # The docs are no part of the schema they show.
    paths = served.client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/docs")]


def test_me_says_whose_credential_it_is(serve):
    served = serve()
    me = served.client.get("/v1/me", headers=served.key(user="bob", groups=("ops",)))
    assert me.status_code == 200
    body = me.json()
    assert (body["tenant"], body["user"], body["role"], body["groups"]) == ("acme", "bob", "editor", ["ops"])
    assert body["key_id"] and body["scopes"] is None
    refused = served.client.get("/v1/me", headers={"Authorization": "Bearer fth_nope"})
    assert refused.status_code == 401 and set(refused.json()) == {"error"}
    assert "/v1/me" in served.client.get("/openapi.json").json()["paths"]
