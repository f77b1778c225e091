"""OpenTelemetry traces exported over OTLP/HTTP to a real protocol peer on loopback.

One trace per request, a child of the caller's ``traceparent``: the request span, then auth,
ask, retrieve (embed, lexical, dense, fusion), answer, generation (model, tokens, cost) and
verification; an upload's ingest stages continue its trace. The OTLP endpoint comes from the
standard OTEL_* variables, read by the OpenTelemetry SDK.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from fathom.config import load_settings
from fathom.errors import ConfigError
from fathom.llm.testing import Reply, ScriptedLLMServer, documents
from fathom.telemetry import Telemetry
from tests.service.conftest import Served
from tests.service.otlp import OtlpReceiver, Span, render

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
KEYS = (
    "http.route",
    "http.response.status_code",
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "fathom.llm.cost_usd",
    "groundedness",
)


@pytest.fixture
def otlp(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    yield receiver
    receiver.close()


def _echo(request: dict[str, Any]) -> Reply:
    for n, text in documents(request).items():
        if "forty seconds" in text:
            return Reply(text=f"The pump restarts after forty seconds [{n}].", usage=(120, 30))
    return Reply(text="Not found in the documents.")


def _walk(span: Span) -> Iterator[Span]:
    yield span
    for child in span.children:
        yield from _walk(child)


def _find(roots: list[Span], name: str) -> Span:
    for root in roots:
        for span in _walk(root):
            if span.name == name:
                return span
    raise AssertionError(f"no span {name!r} in\n{render(roots)}")


def test_an_ask_is_one_trace_under_the_callers_traceparent(serve, otlp: OtlpReceiver):
    with ScriptedLLMServer(_echo) as llm:
        served: Served = serve(
            tracing=True,
            llm="openai:scripted",
            llm_base_url=llm.url,
            llm_prices={"scripted": (2.0, 8.0)},
            answer_cache_size=0,
        )
        reader = served.key(admin=True)
        served.upload(reader, text="# Pumps\n\nThe pump restarts after forty seconds.", source="pumps.md")
        traceparent = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
        response = served.client.post(
            "/v1/ask",
            json={"query": "When does the pump restart?"},
            headers={**reader, "traceparent": traceparent},
        )
        assert response.status_code == 200, response.text
        assert not response.json()["abstained"]

        def done(spans: list[Span]) -> bool:
            return any(s.trace_id == TRACE_ID and s.name == "POST /v1/ask" for s in spans)

        otlp.wait_for(done)
    roots = otlp.tree(TRACE_ID)
    print("\n" + render(roots, KEYS))

    (request,) = roots
    assert request.parent_id == PARENT_SPAN and request.name == "POST /v1/ask"
    assert request.kind == 2  # SERVER
    assert request.attributes["http.route"] == "/v1/ask"
    assert request.attributes["http.response.status_code"] == 200
    assert request.service == "fathom"
    assert [c.name for c in request.children][:2] == ["auth", "ask"]
    ask = _find(roots, "ask")
    assert [c.name for c in ask.children] == ["retrieve", "answer"]
    retrieve = _find(roots, "retrieve")
    assert [c.name for c in retrieve.children] == ["embed", "lexical", "dense", "fusion"]
    for part in retrieve.children:
        assert retrieve.start_ns <= part.start_ns <= part.end_ns <= retrieve.end_ns + 1_000_000
    answer = _find(roots, "answer")
    assert [c.name for c in answer.children] == ["generation", "verification"]
    generation = answer.children[0]
    assert generation.attributes["gen_ai.request.model"] == "scripted"
    assert generation.attributes["gen_ai.usage.input_tokens"] == 120
    assert generation.attributes["gen_ai.usage.output_tokens"] == 30
    assert generation.attributes["fathom.llm.cost_usd"] == pytest.approx((120 * 2.0 + 30 * 8.0) / 1e6)
    assert answer.children[1].attributes["supported"] is True
    # Nothing of the question, the documents or the key in any span.
    flat = repr([(s.name, s.attributes) for root in roots for s in _walk(root)])
    assert "pump" not in flat.lower() and "Bearer" not in flat


def test_an_uploads_ingest_stages_continue_its_trace(serve, otlp: OtlpReceiver):
    served: Served = serve(tracing=True)
    admin = served.key(admin=True)
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
    accepted = served.client.post(
        "/v1/documents",
        json={"text": "# Valves\n\nClose the valve slowly.", "source": "valves.md"},
        headers={**admin, "traceparent": traceparent},
    )
    assert accepted.status_code == 202
    served.wait_job(accepted.json()["job_id"], admin)
    otlp.wait_for(lambda spans: any(s.trace_id == TRACE_ID and s.name == "ingest.index" for s in spans))
    roots = otlp.tree(TRACE_ID)
    print("\n" + render(roots))
    (request,) = roots
    assert request.name == "POST /v1/documents"
    ingest = _find(roots, "ingest")
    assert ingest.parent_id == request.span_id
    assert [c.name for c in ingest.children] == [
        "ingest.parse",
        "ingest.chunk",
        "ingest.embed",
        "ingest.commit",
        "ingest.index",
    ]


def test_without_a_traceparent_each_request_starts_its_own_trace(serve, otlp: OtlpReceiver):
    served: Served = serve(tracing=True)
    reader = served.key()
    for _ in range(2):
        assert served.client.post("/v1/search", json={"query": "valves"}, headers=reader).status_code == 200
    spans = otlp.wait_for(lambda spans: sum(s.name == "POST /v1/search" for s in spans) == 2)
    requests = [s for s in spans if s.name == "POST /v1/search"]
    assert len({s.trace_id for s in requests}) == 2 and all(not s.parent_id for s in requests)
    search = [s for s in spans if s.name == "search"]
    assert {s.trace_id for s in search} == {s.trace_id for s in requests}


def test_tracing_without_the_otel_extra_is_a_clear_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    monkeypatch.delitem(sys.modules, "fathom.tracing", raising=False)
    with pytest.raises(ConfigError) as raised:
        Telemetry.from_settings(load_settings(tmp_path, tracing=True))
    assert raised.value.code == "config.tracing_unavailable"
    assert "fathom-search[otel]" in raised.value.message


def test_a_query_transform_is_a_span_with_its_own_generation(serve, otlp: OtlpReceiver):
    with ScriptedLLMServer(_echo) as llm:
        served: Served = serve(
            tracing=True, llm="openai:scripted", llm_base_url=llm.url, query_transform="rewrite"
        )
        reader = served.key(admin=True)
        served.upload(reader, text="# Pumps\n\nThe pump restarts after forty seconds.", source="pumps.md")
        traceparent = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
        headers = {**reader, "traceparent": traceparent}
        response = served.client.post(
            "/v1/ask", json={"query": "When does the pump restart?"}, headers=headers
        )
        assert response.status_code == 200, response.text
        otlp.wait_for(lambda spans: any(s.trace_id == TRACE_ID and s.name == "POST /v1/ask" for s in spans))
    roots = otlp.tree(TRACE_ID)
    ask = _find(roots, "ask")
    assert [c.name for c in ask.children][:2] == ["transform", "retrieve"]
    (generation,) = ask.children[0].children
    assert generation.name == "generation" and generation.attributes["fathom.llm.purpose"] == "complete"
    assert ask.children[0].attributes["transform"] == "rewrite"
