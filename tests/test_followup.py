"""Follow-ups made standalone without an LLM (deterministic carry-over) and with one (scripted server)."""

from __future__ import annotations

import pytest

from fathom.answer.followup import HistoryTurn, carry_over, entities, rewrite_followup
from fathom.domain import Usage
from fathom.llm.base import Completion


@pytest.mark.parametrize(
    ("previous", "follow_up", "standalone"),
    [
        ("What is CloudNova's support email?", "And its emergency phone?", "CloudNova's emergency phone?"),
        ("What is CloudNova's support email?", "And the emergency phone?", "CloudNova's emergency phone?"),
        ("What is CloudNova's support email?", "Business hours?", "CloudNova's business hours?"),
        ("What is CloudNova's support email?", "What about TechCore?", "What is TechCore's support email?"),
        (
            "What is the support email of SkyAI Cloud?",
            "What is their base URL?",
            "What is SkyAI Cloud's base URL?",
        ),
        ("When was TechNova AI established?", "Who founded it?", "Who founded TechNova AI?"),
        (
            "How does reciprocal rank fusion work?",
            "And its weaknesses?",
            "Reciprocal rank fusion's weaknesses?",
        ),
    ],
)
def test_a_follow_up_carries_the_previous_subject(previous: str, follow_up: str, standalone: str) -> None:
    rewrite = carry_over(follow_up, previous)
    assert rewrite.method == "carry_over"
    assert rewrite.standalone == standalone
    assert rewrite.carried


@pytest.mark.parametrize(
    "question",
    [
        "How does chunking work?",
        "What is RAG?",
        "What about TechCore's business hours?",
        "What is CloudNova's phone?",
    ],
)
def test_a_question_that_stands_on_its_own_is_unchanged(question: str) -> None:
    rewrite = carry_over(question, "What is CloudNova's support email?")
    assert (rewrite.method, rewrite.standalone) == ("unchanged", question)


def test_the_first_question_is_unchanged() -> None:
    assert carry_over("And its phone?", None).standalone == "And its phone?"


def test_names_are_runs_of_capitalised_words_codes_and_addresses() -> None:
    found = entities("Compare CloudNova and SkyAI Cloud at docs.skyai.cloud with GPT4 and ops@cloudnova.ai")
    assert found == ["CloudNova", "SkyAI Cloud", "docs.skyai.cloud", "GPT4", "ops@cloudnova.ai"]


class _Completer:
    """A stand-in for the LLM answerer's ``complete`` (the remote provider is what cannot run)."""

    def __init__(self, text: str | None, failure: str | None = None) -> None:
        self.text, self.failure = text, failure
        self.prompts: list[str] = []

    def complete(self, system: str, user: str, *, tenant: str, max_tokens: int, timeout: float) -> Completion:
        self.prompts.append(user)
        return Completion(self.text, model="openai:m", usage=Usage(40, 8), failure=self.failure)


HISTORY = [HistoryTurn("What is CloudNova's support email?", "Support Email: ops@cloudnova.ai [1]")]


def test_the_llm_rewrites_with_the_history() -> None:
    completer = _Completer("What is CloudNova's emergency phone number?")
    rewrite = rewrite_followup(
        "And its emergency phone?", HISTORY, completer, tenant="t", max_tokens=64, timeout=5, max_chars=2000
    )
    assert (rewrite.method, rewrite.standalone) == ("llm", "What is CloudNova's emergency phone number?")
    assert rewrite.usage.total_tokens == 48 and rewrite.prompt_version == "followup-v1"
    assert "User: What is CloudNova's support email?" in completer.prompts[0]
    assert "Last question: And its emergency phone?" in completer.prompts[0]


def test_a_failed_llm_rewrite_falls_back_to_the_carry_over() -> None:
    completer = _Completer(None, failure="provider.timeout")
    rewrite = rewrite_followup(
        "And its emergency phone?", HISTORY, completer, tenant="t", max_tokens=64, timeout=5, max_chars=2000
    )
    assert (rewrite.method, rewrite.standalone, rewrite.fallback) == (
        "carry_over",
        "CloudNova's emergency phone?",
        "provider.timeout",
    )
