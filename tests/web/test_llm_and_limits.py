"""The page with an LLM configured (a scripted OpenAI-compatible server), and at the service's
limits: Stop cancels a streaming answer, an unavailable LLM shows the extractive answer with a
note, and 413 and 429 get messages people can act on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fathom.llm.testing import Reply, ScriptedLLMServer
from tests.web.conftest import Site, latest, open_page, start_site

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OTTERS = (
    "# Sea otters\n\n"
    "Sea otters hold hands while they sleep so that they do not drift apart. "
    "A group of resting otters is called a raft."
)


def _script(request: dict[str, Any]) -> Reply:
    prompt = request["messages"][-1]["content"]  # the question and the fenced documents
    if "Take your time." in prompt:
        # Starts answering, then stalls: the user gives up and presses Stop.
        return Reply(text="Sea otters hold hands [1] so that they do not drift apart.", hang_after_first=30)
    return Reply(status=500)  # the provider is down


@pytest.fixture(scope="module")
def llm_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with ScriptedLLMServer(_script) as llm:
        home = tmp_path_factory.mktemp("web-llm") / "home"
        keys = {
            name: {"tenant": "acme", "user": name, "admin": True}
            for name in ("seed", "stop", "esc", "down", "busy")
        }
        site = start_site(
            home,
            keys,
            {
                "FATHOM_RATE_LIMIT_PER_MINUTE": "0",
                "FATHOM_LLM": "openai:scripted",
                "FATHOM_LLM_BASE_URL": llm.url,
                "FATHOM_LLM_RETRIES": "0",
                "FATHOM_ANSWER_TOKENS_PER_MINUTE": "1",
                "FATHOM_MAX_UPLOAD_BYTES": "4096",
            },
        )
        try:
            site.upload(site.keys["seed"], text=OTTERS, source="otters.md")
            yield site
        finally:
            site.server.stop()


def test_stop_cancels_a_streaming_answer(browser, llm_site: Site):
    from playwright.sync_api import expect

    page = open_page(browser, llm_site.url, llm_site.keys["stop"])
    page.get_by_label("Ask your documents").fill("Why do sea otters hold hands? Take your time.")
    page.locator("#ask-button").click()
    # The first words stream in, then the model stalls.
    expect(latest(page)).to_contain_text("Sea otters", timeout=60_000)
    expect(page.locator("#ask-status")).to_contain_text("Answering")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#ask-status")).to_have_text("Stopped. The answer was cancelled before it finished.")
    expect(latest(page)).to_contain_text("not checked against your documents")
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    expect(page.locator("#ask-button")).to_be_enabled()


def test_escape_stops_a_streaming_answer(browser, llm_site: Site):
    from playwright.sync_api import expect

    page = open_page(browser, llm_site.url, llm_site.keys["esc"])
    page.get_by_label("Ask your documents").fill("How do sea otters sleep? Take your time.")
    page.get_by_label("Ask your documents").press("Enter")
    expect(latest(page)).to_contain_text("Sea otters", timeout=60_000)
    page.keyboard.press("Escape")
    expect(page.locator("#ask-status")).to_have_text("Stopped. The answer was cancelled before it finished.")
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()


def test_an_unavailable_llm_shows_the_extractive_answer_with_a_note(browser, llm_site: Site):
    from playwright.sync_api import expect

    page = open_page(browser, llm_site.url, llm_site.keys["down"])
    page.get_by_label("Ask your documents").fill("What is a group of resting otters called?")
    page.locator("#ask-button").click()
    expect(page.locator("#ask-status")).to_contain_text("Answered with", timeout=60_000)
    expect(latest(page).locator("button.chip").first).to_be_visible()
    # The extractive answer: sentences quoted verbatim from the document.
    text = latest(page).locator(".answer-text")
    quoted = text.evaluate(
        "p => [...p.childNodes].filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.data).join('')"
    )
    sentences = [s.strip() for s in quoted.split(".") if s.strip()]
    assert sentences and all(sentence in OTTERS for sentence in sentences), quoted
    notes = latest(page, "answer-notes")
    expect(notes).to_contain_text(
        "The language model is unavailable, so this answer is quoted from your documents."
    )
    expect(notes).to_contain_text("LLM unavailable; extractive answer shown")
    expect(latest(page, "answer-meta")).to_contain_text("Quoted from your documents (extractive)")


def test_rate_limit_and_upload_limit_messages(browser, llm_site: Site, tmp_path: Path):
    from playwright.sync_api import expect

    page = open_page(browser, llm_site.url, llm_site.keys["busy"])
    question = page.get_by_label("Ask your documents")
    question.fill("What is a group of resting otters called?")
    page.locator("#ask-button").click()
    expect(page.locator("#ask-status")).to_contain_text("Answered with", timeout=60_000)
    # The answer spent this key's answer tokens for the minute.
    question.fill("And what do they hold while they sleep?")
    page.locator("#ask-button").click()
    expect(page.locator("#ask-status")).to_contain_text(
        "Too many requests for this key right now. Try again in", timeout=60_000
    )
    # The refused follow-up leaves the earlier turn as it was, and comes back to be asked again.
    expect(page.locator("#thread .turn")).to_have_count(1)
    expect(latest(page).locator("button.chip").first).to_be_visible()
    expect(question).to_have_value("And what do they hold while they sleep?")

    big = tmp_path / "big-notes.txt"
    big.write_text("otters " * 2000)
    page.get_by_role("button", name="Documents").click()
    page.locator("#file-input").set_input_files(str(big))
    expect(page.locator("#uploads li").filter(has_text="big-notes.txt")).to_contain_text(
        "“big-notes.txt” is larger than this server accepts."
    )
