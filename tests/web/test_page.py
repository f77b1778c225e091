"""The web page in a real browser against a real `fathom serve`: what a user sees and can do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.files import RUNBOOK
from tests.web.conftest import PHONE, Site, latest, open_page, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


HANDBOOK = (
    "# Team handbook\n\n"
    "## Holidays\n\n"
    "Every employee has twenty-eight days of paid holiday a year. "
    "Holiday requests go to your manager two weeks ahead.\n"
)
XSS_TITLE = "<script>window.__pwned=1</script>Release notes <img src=x onerror=window.__pwned=2>"
XSS_TEXT = (
    "The rollout codeword for the spring release is periwinkle. "
    'Read <a href="javascript:window.__pwned=3">the checklist</a> '
    "and [the guide](javascript:window.__pwned=4) before launch. <script>window.__pwned = 5</script> "
    '<img src="x" onerror="window.__pwned=6"> The release ships on a Tuesday.'
)


@pytest.fixture(scope="module")
def seeded(site: Site) -> Site:
    """Documents uploaded through the API: acme's runbook, an XSS document, and globex's secret."""
    if not site.seeded:
        site.seeded["runbook"] = site.upload(
            site.keys["admin"], text=RUNBOOK, source="seed/runbook.md", title="Operations runbook"
        )
        site.seeded["xss"] = site.upload(site.keys["admin"], text=XSS_TEXT, source="xss.txt", title=XSS_TITLE)
        site.seeded["globex"] = site.upload(
            site.keys["globex"],
            text="# Globex vault\n\nThe vault combination is MARMALADE-4471. Globex rotates signing keys "
            "every ninety days, and backups run nightly at Globex too.",
            source="globex/vault.md",
            title="Globex vault MARMALADE",
        )
    return site


def _drop_files(page: Any, files: list[tuple[str, str, str]]) -> None:
    """Drag and drop files onto the drop zone, as a user dragging them from their desktop does."""
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, text, type] of files) transfer.items.add(new File([text], name, { type }));
            return transfer;
        }""",
        files,
    )
    page.dispatch_event("#dropzone", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})


def _ask(page: Any, question: str) -> Any:
    page.get_by_role("button", name="Ask", exact=True).first.click()  # the Ask tab
    page.get_by_label("Ask your documents").fill(question)
    with page.expect_response(lambda r: r.url.endswith("/messages")) as response:
        page.locator("#ask-button").click()
    return response.value


def _no_horizontal_overflow(page: Any) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


def test_upload_wait_ask_and_open_a_citation(browser, site: Site, tmp_path: Path):
    expect = _expect()
    page = open_page(browser, site.url, site.keys["admin"])
    page.get_by_role("button", name="Documents").click()
    _drop_files(
        page,
        [("runbook.md", RUNBOOK, "text/markdown"), ("handbook.md", HANDBOOK, "text/markdown")],
    )
    uploads = page.locator("#uploads li")
    expect(uploads).to_have_count(2)
    for name in ("runbook.md", "handbook.md"):
        item = uploads.filter(has_text=name)
        expect(item).to_contain_text("Ready: you can ask about it now.", timeout=120_000)
    expect(page.locator("#doc-list")).to_contain_text("Team handbook")
    expect(page.locator("#doc-list")).to_contain_text("handbook.md")
    screenshot(page, "web-documents-desktop.png", tmp_path)

    response = _ask(page, "How often are signing keys rotated?")
    assert response.headers["content-type"].startswith("text/event-stream")
    status = page.locator("#ask-status")
    expect(status).to_contain_text("Answered with", timeout=60_000)
    answer = latest(page)
    expect(answer).to_contain_text("Signing keys are rotated every ninety days")
    chips = answer.locator("button.chip")
    assert chips.count() >= 1
    expect(chips.first).to_have_accessible_name("Source 1: Operations runbook")
    expect(latest(page, "answer-meta")).to_contain_text("Well supported by the sources")
    expect(latest(page, "answer-meta")).to_contain_text("100% of the answer is backed by quotes")
    expect(latest(page, "answer-sources")).to_contain_text("Key rotation")

    chips.first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text("Operations runbook")
    expect(page.locator("#passage-where")).to_contain_text("Key rotation")
    quote = dialog.locator("mark")
    expect(quote).to_have_count(1)
    expect(quote).to_contain_text("ninety days")
    # In context: the text around the quote is shown too, not just the quote.
    expect(page.locator("#passage-text")).to_contain_text("previous key stays valid for one week")
    assert quote.evaluate("mark => getComputedStyle(mark).backgroundColor") != "rgba(0, 0, 0, 0)"
    screenshot(page, "web-citation-desktop.png", tmp_path, full_page=False)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    screenshot(page, "web-answer-desktop.png", tmp_path)

    page.get_by_role("button", name="Not helpful").click()
    expect(page.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")
    page.get_by_label("Comment (optional)").fill("Please also say who rotates them.")
    page.get_by_role("button", name="Send feedback").click()
    expect(page.locator(".feedback-status")).to_have_text("Thank you: your feedback was recorded.")


def test_another_tenants_document_never_shows(browser, seeded: Site):
    expect = _expect()
    page = open_page(browser, seeded.url, seeded.keys["admin"])
    page.get_by_role("button", name="Documents").click()
    expect(page.locator("#doc-list")).to_contain_text("Operations runbook")
    assert "MARMALADE" not in page.locator("main").inner_text()
    assert "globex" not in page.locator("#doc-list").inner_text().lower()
    page.get_by_label("Search titles and sources").fill("vault")
    expect(page.locator("#doc-status")).to_contain_text("Showing 0 of")

    for question in ("What is the vault combination?", "How often does Globex rotate signing keys?"):
        _ask(page, question)
        expect(page.locator("#ask-status")).not_to_contain_text("Answering", timeout=60_000)
        shown = page.locator("main").inner_text()
        assert "MARMALADE" not in shown and "Globex vault" not in shown
        for chip in latest(page).locator("button.chip").all():
            chip.click()
            expect(page.locator("#passage-text mark")).to_have_count(1)
            assert "MARMALADE" not in page.locator("#passage-dialog").inner_text()
            page.keyboard.press("Escape")


def test_markup_in_documents_renders_as_inert_text(browser, seeded: Site):
    expect = _expect()
    page = open_page(browser, seeded.url, seeded.keys["admin"])
    page.get_by_role("button", name="Documents").click()
    card = page.locator("#doc-list li").filter(has_text="Release notes")
    expect(card).to_have_count(1)
    # The title is shown exactly as written: markup as visible text.
    expect(card.get_by_role("heading")).to_have_text(XSS_TITLE)

    _ask(page, "What is the rollout codeword for the spring release?")
    expect(page.locator("#ask-status")).to_contain_text("Answered with", timeout=60_000)
    expect(latest(page)).to_contain_text("periwinkle")
    latest(page, "answer-sources").get_by_role("button").filter(has_text="Release notes").first.click()
    expect(page.locator("#passage-text mark")).to_have_count(1)
    passage = page.locator("#passage-text").inner_text()
    assert "javascript:" in passage  # shown as text, not as a link
    assert "<script>window.__pwned = 5</script>" in passage
    page.keyboard.press("Escape")

    assert page.evaluate("typeof window.__pwned") == "undefined"
    scripts = page.evaluate("[...document.scripts].map(s => s.getAttribute('src'))")
    assert scripts == ["/static/app.js"], scripts
    assert page.evaluate("[...document.images].map(i => i.getAttribute('src'))") == ["/static/favicon.svg"]
    assert page.locator("[onerror], [onclick], [onload]").count() == 0
    hrefs = page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))")
    assert hrefs == ["#main"], hrefs


def test_a_bad_key_gets_a_clear_message(browser, site: Site):
    expect = _expect()
    page = open_page(browser, site.url, "fth_notakey_000000000000")
    page.get_by_label("Ask your documents").fill("How often are signing keys rotated?")
    page.get_by_label("Ask your documents").press("Enter")
    expect(page.locator("#ask-status")).to_contain_text("Your API key was not accepted")
    expect(page.get_by_role("alert")).to_contain_text("Your API key was not accepted")
    expect(page.get_by_label("Your fathom API key")).to_be_visible()
    # The key lives in this tab's session storage only.
    stored = page.evaluate("[sessionStorage.getItem('fathom.apiKey'), localStorage.length]")
    assert stored == ["fth_notakey_000000000000", 0]


def test_a_citation_of_a_deleted_document_says_so(browser, site: Site):
    expect = _expect()
    document = site.upload(
        site.keys["admin"],
        text="# Parking\n\nVisitors park on level minus two, bay twelve onwards.",
        source="parking.md",
    )
    page = open_page(browser, site.url, site.keys["admin"])
    _ask(page, "Where do visitors park?")
    chip = latest(page).locator("button.chip").first
    expect(chip).to_be_visible(timeout=60_000)
    httpx.delete(
        f"{site.url}/v1/documents/{document['document_id']}",
        headers={"Authorization": f"Bearer {site.keys['admin']}"},
    ).raise_for_status()
    chip.click()
    expect(page.locator("#passage-text")).to_contain_text("The cited document was not found")
    # The quote the answer carried is still shown, highlighted.
    expect(page.locator("#passage-text mark")).to_contain_text("level minus two")


def test_delete_asks_for_confirmation_and_filters_narrow_the_list(browser, seeded: Site):
    expect = _expect()
    seeded.upload(seeded.keys["admin"], text="Old notes about the 2019 offsite.", source="old/offsite.txt")
    page = open_page(browser, seeded.url, seeded.keys["admin"])
    page.get_by_role("button", name="Documents").click()
    documents = page.locator("#doc-list li")
    expect(documents.filter(has_text="old/offsite.txt")).to_have_count(1)

    page.get_by_label("Type").select_option(label="Markdown")
    for source in documents.locator(".doc-meta").all_inner_texts():
        assert source.startswith("Markdown")
    page.get_by_label("Type").select_option(label="All types")
    page.get_by_label("Search titles and sources").fill("offsite")
    expect(documents).to_have_count(1)
    expect(page.locator("#doc-status")).to_contain_text("Showing 1 of")

    documents.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("This cannot be undone")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(documents).to_have_count(1)

    documents.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("#doc-status")).to_contain_text("Deleted")
    expect(documents).to_have_count(0)

    # A key that neither owns the document nor is an admin is told why it cannot delete.
    reader = open_page(browser, seeded.url, seeded.keys["reader"])
    reader.get_by_role("button", name="Documents").click()
    runbook = reader.locator("#doc-list li").filter(has_text="seed/runbook.md")
    runbook.get_by_role("button", name="Delete").click()
    reader.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(reader.locator("#doc-status")).to_contain_text("or an admin may change it")
    expect(runbook).to_have_count(1)


def test_keyboard_only_and_every_control_labelled(browser, seeded: Site):
    expect = _expect()
    page = open_page(browser, seeded.url, seeded.keys["admin"])
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')].filter(el => {
            const own = (el.getAttribute('aria-label') || '').trim();
            const label = el.labels && [...el.labels].some(l => l.textContent.trim());
            const text = el.tagName === 'BUTTON' && el.textContent.trim();
            return !(own || label || text);
        }).map(el => el.id || el.outerHTML)"""
    )
    assert unlabelled == []
    page.get_by_label("Ask your documents").focus()
    page.keyboard.type("How long are backups kept?")
    page.keyboard.press("Enter")
    chip = latest(page).locator("button.chip").first
    expect(chip).to_be_visible(timeout=60_000)
    chip.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#passage-text mark")).to_contain_text("thirty days")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert page.evaluate("document.activeElement.classList.contains('chip')")


def test_phone_width_has_no_sideways_scrolling(browser, seeded: Site, tmp_path: Path):
    expect = _expect()
    page = open_page(browser, seeded.url, seeded.keys["admin"], viewport=PHONE)
    _no_horizontal_overflow(page)
    _ask(page, "How often are signing keys rotated?")
    expect(page.locator("#ask-status")).to_contain_text("Answered with", timeout=60_000)
    _no_horizontal_overflow(page)
    screenshot(page, "web-answer-phone.png", tmp_path)
    latest(page).locator("button.chip").first.click()
    expect(page.locator("#passage-text mark")).to_have_count(1)
    _no_horizontal_overflow(page)
    screenshot(page, "web-citation-phone.png", tmp_path, full_page=False)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Documents").click()
    expect(page.locator("#doc-list li").first).to_be_visible()
    _no_horizontal_overflow(page)
    screenshot(page, "web-documents-phone.png", tmp_path)


def test_the_page_makes_no_request_to_another_origin(browser, seeded: Site):
    expect = _expect()
    context = browser.new_context()
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    response = page.goto(seeded.url + "/")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Your fathom API key").fill(seeded.keys["admin"])
    page.get_by_label("Your fathom API key").press("Enter")
    _ask(page, "How often are signing keys rotated?")
    expect(page.locator("#ask-status")).to_contain_text("Answered with", timeout=60_000)
    assert urls and all(url.startswith(seeded.url + "/") for url in urls), urls
