"""Everyday parts of the page in a real browser: offline API docs, dark mode, shortcuts."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.web.conftest import PAGE_ERRORS, Site, open_page

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


def test_dark_mode_follows_the_system_setting(browser: Any, site: Site) -> None:
    backgrounds = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)
        page = context.new_page()
        page.on("pageerror", lambda error: PAGE_ERRORS.append(str(error)))
        page.goto(site.url + "/")
        backgrounds[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
        context.close()
    assert backgrounds["light"] == "rgb(246, 248, 248)"
    red, green, blue = (int(part) for part in backgrounds["dark"][4:-1].split(","))
    assert max(red, green, blue) < 64, backgrounds  # a dark page, not the light one


def test_the_header_shows_whose_key_it_is_and_slash_focuses_the_question(browser: Any, site: Site) -> None:
    expect = _expect()
    page = open_page(browser, site.url, site.keys["reader"])
    expect(page.locator("#identity")).to_have_text("acme · bob")
    page.get_by_role("button", name="Documents").click()
    page.locator("body").press("/")
    expect(page.get_by_label("Ask your documents")).to_be_focused()
    assert page.get_by_label("Ask your documents").input_value() == ""  # the "/" was not typed
    # Typed inside the question, "/" is just a character.
    page.get_by_label("Ask your documents").press("/")
    assert page.get_by_label("Ask your documents").input_value() == "/"
    page.context.close()


def test_a_bad_key_is_refused_on_entry_and_the_error_clears_on_the_next_key(browser: Any, site: Site) -> None:
    expect = _expect()
    page = open_page(browser, site.url, "fth_not_a_real_key")
    expect(page.locator("#banner")).to_contain_text("not accepted")
    expect(page.locator("#identity")).to_be_hidden()
    page.get_by_label("Your fathom API key").fill(site.keys["admin"])
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#banner")).to_be_hidden()
    expect(page.locator("#identity")).to_have_text("acme · alice")
    # A message stays only until the next action: here, switching views.
    page.locator("#key-toggle").click()
    page.get_by_role("button", name="Forget key").click()
    expect(page.locator("#banner")).to_contain_text("forgotten")
    expect(page.locator("#identity")).to_be_hidden()
    page.get_by_role("button", name="Documents").click()
    expect(page.locator("#banner")).to_be_hidden()
    page.context.close()


GARDEN = (
    "# Garden guide\n\n"
    "## Watering\n\n"
    "Water the **tomatoes** every morning with `rainwater` from the barrel.\n\n"
    "- Roses need pruning in March.\n"
    "- Basil likes a warm windowsill.\n"
)


def test_copy_answer_and_passages_render_markdown_as_formatting(browser: Any, site: Site) -> None:
    expect = _expect()
    site.upload(site.keys["globex"], text=GARDEN, source="garden.md")
    page = open_page(browser, site.url, site.keys["globex"])
    page.get_by_label("Ask your documents").fill("When are the tomatoes watered?")
    page.get_by_label("Ask your documents").press("Enter")
    expect(page.locator("#ask-status")).to_contain_text("Answered with", timeout=60_000)
    # "Copy answer with citations": the answer, then each numbered source with its quote.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page.get_by_role("button", name="Copy answer with citations").click()
    expect(page.locator(".copy-note")).to_have_text("Copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "tomatoes" in copied and "[1]" in copied, copied
    assert "\nSources:\n[1] " in copied and "garden.md" in copied and "“" in copied, copied
    page.locator("#thread .turn").last.locator("button.chip").first.click()
    body = page.locator("#passage-text .passage-body")
    expect(body.locator("mark")).to_have_count(1)
    text = body.inner_text()
    assert "tomatoes" in text and "rainwater" in text
    assert "**" not in text and "`" not in text and "## " not in text, text
    expect(body.locator("strong", has_text="tomatoes")).to_have_count(1)
    expect(body.locator("code", has_text="rainwater")).to_have_count(1)
    # The formatter itself: headings and bullets lose their markers; markup stays text.
    shown = page.evaluate(
        """async () => {
            const { formatted } = await import("/static/markdown.js");
            const box = document.createElement("p");
            const source = "## Watering\\n- <img src=x onerror=alert(1)> **now**\\nA # not heading";
            box.append(...formatted(source));
            const count = (selector) => box.querySelectorAll(selector).length;
            return [box.textContent, count("strong.md-heading"), count("img")];
        }"""
    )
    assert shown == ["Watering\n• <img src=x onerror=alert(1)> now\nA # not heading", 1, 0], shown
    page.context.close()
