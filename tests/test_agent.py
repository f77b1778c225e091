"""Agent mode: the tools protocol over real local HTTP, the bounded loop, its trace and its fallbacks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fathom import Fathom
from fathom.answer.agent import AgentLimits
from fathom.embed import Embedder
from fathom.llm.bridge import LoopThread
from fathom.llm.openai import OpenAICompatibleProvider
from fathom.llm.testing import Reply, ScriptedLLMServer, ToolCallReply
from fathom.llm.testing_agent import ScriptedResearcher

pytestmark = pytest.mark.integration

DOCUMENTS = {
    "cloudnova.md": "# CloudNova operations guide\n\nCloudNova runs cloud infrastructure.\n\n## Contact\n\n"
    "Support Email: ops@cloudnova.ai\n\nEmergency Phone: +91 9876543244\n",
    "skyai.md": "# SkyAI Cloud developer guide\n\nSkyAI Cloud is a managed AI platform.\n\n## Contact\n\n"
    "Support Email: help@skyai.cloud\n\nEmergency Hotline: +91 9876543288\n",
    "kettle.md": "# Kitchen\n\nDescale the kettle every four weeks with citric acid.\n",
}
QUESTION = "What are the support email addresses of CloudNova and SkyAI Cloud?"


@pytest.fixture
def make_fathom(tmp_path: Path, embedder: Embedder) -> Iterator[Callable[..., Fathom]]:
    opened: list[Fathom] = []

    def make(server: ScriptedLLMServer | None, **settings: Any) -> Fathom:
        llm = {"llm": "openai:scripted", "llm_base_url": server.url} if server else {}
        fathom = Fathom(
            home=tmp_path / f"home{len(opened)}",
            embedder=embedder,
            llm_retries=0,
            answer_cache_size=0,
            **llm,
            **settings,
        )
        opened.append(fathom)
        for source, text in DOCUMENTS.items():
            fathom.ingest_text(text, source=source)
        return fathom

    yield make
    for fathom in opened:
        fathom.close()


def _provider(server: ScriptedLLMServer) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        "openai:scripted",
        model="scripted",
        base_url=server.url,
        api_key=None,
        connect_timeout=2,
        first_token_timeout=5,
        total_timeout=10,
        retries=0,
        backoff=0.01,
        breaker_failures=5,
        breaker_cooldown=1,
    )


@pytest.mark.parametrize("whole", [False, True])
def test_tool_calls_travel_over_the_openai_tools_protocol(whole: bool) -> None:
    calls = [
        ToolCallReply("search", {"query": "CloudNova phone", "k": 3}),
        ToolCallReply("decompose", {"sub_questions": ["a", "b"]}),
    ]
    with ScriptedLLMServer(lambda _request: Reply(text="", tool_calls=calls, whole=whole)) as server:
        provider = _provider(server)
        loop = LoopThread()
        try:
            tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
            turn = loop.run(
                provider.chat(
                    [{"role": "user", "content": "q"}],
                    tools=tools,
                    tool_choice="auto",
                    temperature=0,
                    max_tokens=64,
                )
            )
            loop.run(provider.aclose())
        finally:
            loop.close()
    assert [(c.name, c.arguments) for c in turn.tool_calls] == [
        ("search", '{"query": "CloudNova phone", "k": 3}'),
        ("decompose", '{"sub_questions": ["a", "b"]}'),
    ]
    assert turn.text == "" and turn.tool_calls[0].id == "call_0"
    request = server.requests[0]
    assert request["tools"] == tools and request["tool_choice"] == "auto" and request["stream"] is True


def test_the_agent_decomposes_searches_and_answers_with_verified_citations(
    make_fathom: Callable[..., Fathom],
) -> None:
    with ScriptedLLMServer(ScriptedResearcher()) as server:
        fathom = make_fathom(server)
        answer = fathom.ask(QUESTION, mode="agent")
        requests = list(server.requests)
    assert "ops@cloudnova.ai" in answer.answer and "help@skyai.cloud" in answer.answer
    trace = answer.agent
    assert trace is not None and trace.stopped == "answered" and trace.fallback is None
    assert [s.tool for s in trace.steps] == ["decompose", "search", "search", "answer"]
    assert trace.steps[0].arguments == {
        "sub_questions": ["CloudNova support email addresses", "SkyAI Cloud support email addresses"]
    }
    searches = trace.steps[1:3]
    assert [s.arguments["query"] for s in searches] == list(trace.steps[0].arguments["sub_questions"])
    assert all(s.passages and len(s.hits) == len(s.passages) and s.ms > 0 for s in searches)
    assert [s.turn for s in trace.steps] == [1, 2, 2, 3]
    assert trace.usage.total_tokens == 3 * 150 == answer.usage.total_tokens
    assert (trace.max_steps, trace.max_seconds, trace.max_tokens) == (6, 60.0, 16_000)
    for citation in answer.citations:
        assert fathom.document_text(citation.doc_id)[citation.start : citation.end] == citation.quote
    assert {c.quote for c in answer.citations} == {
        "Support Email: ops@cloudnova.ai",
        "Support Email: help@skyai.cloud",
    }
    # The tools protocol carried the calls: results came back as tool messages, fenced.
    last = requests[-1]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "tool", "assistant", "tool", "tool"]
    assert last[5]["content"].startswith("<document-")


def test_single_shot_mode_makes_one_model_call(make_fathom: Callable[..., Fathom]) -> None:
    with ScriptedLLMServer(ScriptedResearcher()) as server:
        answer = make_fathom(server).ask(QUESTION)
        assert len(server.requests) == 1 and "tools" not in server.requests[0]
    assert answer.agent is None


def test_the_step_limit_falls_back_to_the_single_shot_answer(make_fathom: Callable[..., Fathom]) -> None:
    script = ScriptedResearcher()
    with ScriptedLLMServer(script) as server:
        answer = make_fathom(server, agent_max_steps=2).ask(QUESTION, mode="agent")
    trace = answer.agent
    assert trace is not None and trace.fallback == trace.stopped == "agent.max_steps"
    assert [s.tool for s in trace.steps] == ["decompose", "search"]
    assert answer.model == "openai:scripted" and script.calls == {"agent": 2, "answer": 1}
    assert "agent mode stopped (agent.max_steps); the single-shot answer is shown" in answer.notes
    assert answer.usage.total_tokens == 3 * 150  # the agent's tokens count too


def test_per_request_limits_lower_the_settings_but_never_raise_them(
    make_fathom: Callable[..., Fathom],
) -> None:
    with ScriptedLLMServer(ScriptedResearcher()) as server:
        fathom = make_fathom(server, agent_max_steps=3)
        raised = fathom.ask(QUESTION, mode="agent", agent_limits=AgentLimits(max_steps=40, max_seconds=9999))
        lowered = fathom.ask(QUESTION, mode="agent", agent_limits=AgentLimits(max_steps=1))
    assert raised.agent is not None and (raised.agent.max_steps, raised.agent.max_seconds) == (3, 60.0)
    assert raised.agent.stopped == "answered"
    assert lowered.agent is not None and lowered.agent.fallback == "agent.max_steps"


def test_the_token_limit_stops_the_loop(make_fathom: Callable[..., Fathom]) -> None:
    with ScriptedLLMServer(ScriptedResearcher()) as server:
        answer = make_fathom(server, agent_max_tokens=256).ask(QUESTION, mode="agent")
    assert answer.agent is not None and answer.agent.fallback == "agent.max_tokens"
    assert answer.agent.usage.total_tokens == 300 and answer.agent.steps[-1].tool == "limit"


def test_the_time_limit_stops_a_slow_model(make_fathom: Callable[..., Fathom]) -> None:
    research = ScriptedResearcher()

    def slow_tools(request: dict[str, Any]) -> Reply:
        reply = research(request)
        if "tools" in request:
            reply.hang_before = 5.0
        return reply

    with ScriptedLLMServer(slow_tools) as server:
        fathom = make_fathom(server, agent_max_seconds=0.5)
        started = time.monotonic()
        answer = fathom.ask(QUESTION, mode="agent")
        took = time.monotonic() - started
    assert answer.agent is not None and answer.agent.fallback == "agent.max_seconds"
    # The loop gave up at its deadline (a loaded CI machine adds its own delay to the whole ask).
    assert answer.agent.ms < 3000, (answer.agent.ms, took)
    assert answer.model == "openai:scripted"  # the single-shot answer, from the model


def test_a_failing_provider_falls_back_cleanly(make_fathom: Callable[..., Fathom]) -> None:
    research = ScriptedResearcher()

    def broken_tools(request: dict[str, Any]) -> Reply:
        return Reply(status=500) if "tools" in request else research(request)

    with ScriptedLLMServer(broken_tools) as server:
        answer = make_fathom(server).ask(QUESTION, mode="agent")
    assert answer.agent is not None and answer.agent.fallback == "provider.server_error"
    assert answer.agent.steps == () and "ops@cloudnova.ai" in answer.answer


def test_refused_tool_calls_are_steps_with_errors(make_fathom: Callable[..., Fathom]) -> None:
    replies = iter(
        [
            Reply(
                tool_calls=[
                    ToolCallReply("delete_everything", {}),
                    ToolCallReply("read_passage", {"passage": 7}),
                ]
            ),
            Reply(tool_calls=[ToolCallReply("search", {"query": "CloudNova support email"})]),
            Reply(text="Support Email: ops@cloudnova.ai [1]"),
        ]
    )
    with ScriptedLLMServer(lambda _request: next(replies)) as server:
        answer = make_fathom(server).ask("What is CloudNova's support email?", mode="agent")
    assert answer.agent is not None
    assert [(s.tool, s.error) for s in answer.agent.steps] == [
        ("delete_everything", "agent.unknown_tool"),
        ("read_passage", "agent.no_passage"),
        ("search", None),
        ("answer", None),
    ]
    assert answer.answer == "Support Email: ops@cloudnova.ai [1]" and answer.citations


def test_read_passage_gives_the_passage_in_context(make_fathom: Callable[..., Fathom]) -> None:
    replies = iter(
        [
            Reply(tool_calls=[ToolCallReply("search", {"query": "CloudNova emergency phone", "k": 1})]),
            Reply(tool_calls=[ToolCallReply("read_passage", {"passage": 1})]),
            Reply(text="Emergency Phone: +91 9876543244 [2]"),
        ]
    )
    with ScriptedLLMServer(lambda _request: next(replies)) as server:
        fathom = make_fathom(server)
        answer = fathom.ask("What is CloudNova's emergency phone?", mode="agent")
        read = server.requests[-1]["messages"][-1]["content"]
    assert answer.agent is not None and [s.tool for s in answer.agent.steps] == [
        "search",
        "read_passage",
        "answer",
    ]
    assert answer.agent.steps[1].passages == (2,) and "CloudNova runs cloud infrastructure" in read
    citation = answer.citations[0]
    assert fathom.document_text(citation.doc_id)[citation.start : citation.end] == citation.quote


def test_a_fabricated_sentence_is_removed_from_an_agent_answer(make_fathom: Callable[..., Fathom]) -> None:
    replies = iter(
        [
            Reply(tool_calls=[ToolCallReply("search", {"query": "CloudNova support email"})]),
            Reply(text="Support Email: ops@cloudnova.ai [1]\nCloudNova was founded on the Moon in 2157 [1]"),
        ]
    )
    with ScriptedLLMServer(lambda _request: next(replies)) as server:
        answer = make_fathom(server).ask("What is CloudNova's support email?", mode="agent")
    assert "Moon" not in answer.answer and "ops@cloudnova.ai" in answer.answer


def test_agent_mode_without_an_llm_is_the_single_shot_answer(make_fathom: Callable[..., Fathom]) -> None:
    answer = make_fathom(None).ask("What is CloudNova's support email?", mode="agent")
    assert answer.model == "extractive" and answer.agent is None
    assert any("agent mode needs an LLM" in note for note in answer.notes)
