"""The Ask view as a conversation thread in a real browser: the scripted CloudNova dialogue over
the seeds corpus (the follow-up answered in context), earlier turns kept on the page, a reload
resuming the thread, "New conversation" starting afresh, and a conversation gone from the server
replaced by a new one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fathom import Fathom
from fathom.embed import Embedder
from tests.conftest import require_shared
from tests.test_conversations_seeds import CLOUDNOVA_PHONE, FIRST, FOLLOW_UP, OTHER_PHONES
from tests.web.conftest import Site, latest, open_page, screenshot, start_site

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ANSWERED = 120_000  # ms: the real model on a shared machine


def _expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


@pytest.fixture(scope="module")
def seeds_site(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Site]:
    """`fathom serve` over the seeds corpus (ingested before it starts), with a key for alice."""
    seeds = require_shared("corpus", "seeds")
    home = tmp_path_factory.mktemp("web-seeds") / "home"
    with Fathom(home=home, embedder=embedder) as fathom:
        assert fathom.ingest([seeds]).ok
        tenant = fathom.settings.tenant
    site = start_site(
        home, {"alice": {"tenant": tenant, "user": "alice"}}, {"FATHOM_RATE_LIMIT_PER_MINUTE": "0"}
    )
    yield site
    site.server.stop()


def _ask(page: Any, question: str) -> str:
    """Ask in the page; returns the id of the conversation the question was posted to."""
    page.get_by_label("Ask your documents").fill(question)
    # The answered post (a conversation gone from the server is first refused with a 404).
    with page.expect_response(lambda r: r.url.endswith("/messages") and r.status == 200) as posted:
        page.get_by_label("Ask your documents").press("Enter")
    found = re.search(r"/v1/conversations/([^/]+)/messages$", posted.value.url)
    assert found, posted.value.url
    _expect()(page.locator("#ask-status")).to_contain_text("Answered with", timeout=ANSWERED)
    return found[1]


def _turns(site: Site, conversation_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{site.url}/v1/conversations/{conversation_id}",
        headers={"Authorization": f"Bearer {site.keys['alice']}"},
    )
    response.raise_for_status()
    return list(response.json()["turns"])


def _only_cloudnova(text: str) -> None:
    assert CLOUDNOVA_PHONE in text, text
    assert not [p for p in OTHER_PHONES if p in text], text


def test_the_cloudnova_dialogue_then_a_new_conversation(browser, seeds_site: Site, tmp_path: Path):
    expect = _expect()
    page = open_page(browser, seeds_site.url, seeds_site.keys["alice"])
    turns = page.locator("#thread .turn")
    new = page.get_by_role("button", name="New conversation")
    expect(new).to_be_disabled()

    first = _ask(page, FIRST)
    expect(latest(page)).to_contain_text("ops@cloudnova.ai")
    expect(turns.first.locator(".rewrite")).to_be_hidden()  # the first question stands alone
    assert page.evaluate("sessionStorage.getItem('fathom.conversation')") == first

    assert _ask(page, FOLLOW_UP) == first  # the follow-up is posted to the same conversation
    expect(turns).to_have_count(2)
    expect(turns.nth(0).get_by_role("heading", level=2)).to_have_text(f"You asked: {FIRST}")
    expect(turns.nth(0)).to_contain_text("ops@cloudnova.ai")  # the earlier turn stays
    expect(turns.nth(1).get_by_role("heading", level=2)).to_have_text(f"You asked: {FOLLOW_UP}")
    expect(turns.nth(1).locator(".rewrite")).to_have_text("Searched as: CloudNova's emergency phone?")
    _only_cloudnova(latest(page).inner_text())
    expect(latest(page).locator("button.chip").first).to_be_visible()
    latest(page, "answer-sources").get_by_role("button").first.click()
    expect(page.locator("#passage-text mark")).to_have_count(1)
    page.keyboard.press("Escape")
    screenshot(page, "web-thread-desktop.png", tmp_path)

    # A reload resumes the tab's conversation from the server: both turns, with their citations.
    page.reload()
    expect(turns).to_have_count(2)
    expect(turns.nth(0)).to_contain_text("ops@cloudnova.ai")
    expect(turns.nth(1).locator(".rewrite")).to_have_text("Searched as: CloudNova's emergency phone?")
    _only_cloudnova(turns.nth(1).locator(".answer-body").inner_text())
    expect(turns.nth(1).locator(".answer-body button.chip").first).to_be_visible()
    expect(page.locator("#ask-status")).to_contain_text(
        "Resumed this tab's conversation (2 earlier questions)"
    )

    # New conversation: the thread empties, and the same follow-up now has no history to use.
    new.click()
    expect(turns).to_have_count(0)
    expect(page.locator("#thread")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('fathom.conversation')") is None
    second = _ask(page, FOLLOW_UP)
    assert second != first
    expect(turns).to_have_count(1)
    expect(latest(page, "rewrite")).to_be_hidden()

    # Through the API: two conversations, the first with both turns, the second alone.
    earlier = _turns(seeds_site, first)
    assert [t["question"] for t in earlier] == [FIRST, FOLLOW_UP]
    assert earlier[1]["standalone_question"] == "CloudNova's emergency phone?"
    later = _turns(seeds_site, second)
    assert [(t["question"], t["standalone_question"]) for t in later] == [(FOLLOW_UP, FOLLOW_UP)]


def test_a_conversation_gone_from_the_server_is_replaced_and_errors_keep_the_thread(
    browser, seeds_site: Site
):
    expect = _expect()
    page = open_page(browser, seeds_site.url, seeds_site.keys["alice"])
    turns = page.locator("#thread .turn")
    first = _ask(page, FIRST)
    httpx.delete(
        f"{seeds_site.url}/v1/conversations/{first}",
        headers={"Authorization": f"Bearer {seeds_site.keys['alice']}"},
    ).raise_for_status()

    second = _ask(page, FOLLOW_UP)  # 404 for the deleted one, then asked in a new one
    assert second != first
    expect(turns).to_have_count(2)
    expect(page.locator("#thread .thread-break")).to_have_text(
        "The earlier conversation has ended; a new one starts here."
    )
    expect(turns.nth(0)).to_contain_text("ops@cloudnova.ai")

    # A refused question (here: too long) leaves the earlier turns and comes back to be edited.
    question = page.get_by_label("Ask your documents")
    question.evaluate("(box, text) => { box.removeAttribute('maxlength'); box.value = text; }", "why " * 2100)
    question.press("Enter")
    expect(page.locator("#ask-status")).not_to_contain_text("Answering", timeout=ANSWERED)
    expect(page.locator("#ask-status")).to_have_attribute("data-kind", "error")
    expect(turns).to_have_count(2)
    expect(turns.nth(0)).to_contain_text("ops@cloudnova.ai")
    assert question.input_value().startswith("why why")
