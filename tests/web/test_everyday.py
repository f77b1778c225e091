"""Everyday parts of the page in a real browser: offline API docs, dark mode, shortcuts."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.web.conftest import PAGE_ERRORS, Site

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def test_swagger_ui_renders_offline_under_the_csp(browser: Any, site: Site) -> None:
    """/docs draws the API's operations with the CSP on and asks nothing of another origin."""
    context = browser.new_context()
    page = context.new_page()
    origins: set[str] = set()
    violations: list[str] = []
    page.on("request", lambda request: origins.add(urlsplit(request.url).netloc))
    page.on("pageerror", lambda error: PAGE_ERRORS.append(str(error)))

    def console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", console)
    response = page.goto(site.url + "/docs")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    _expect()(page.locator(".swagger-ui .info .title")).to_contain_text("fathom", timeout=30_000)
    _expect()(page.locator(".opblock-summary-path", has_text="/v1/search").first).to_be_visible()
    assert origins == {urlsplit(site.url).netloc}, origins
    assert violations == [], violations
    context.close()
