"""Prometheus metrics: LLM latency, tokens and cost, answer-cache hits and misses, the answer
stage, and docs/service.md naming exactly what is exported."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from fathom.llm.testing import Reply, ScriptedLLMServer, documents
from fathom.service.metrics import Metrics
from tests.service.conftest import Served

DOCS = Path(__file__).resolve().parents[2] / "docs" / "service.md"


def _exported_names() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names


def test_the_service_guide_names_exactly_the_exported_metrics():
    text = DOCS.read_text()
    section = text[text.index("### Metrics and logs") :]
    section = section[: section.index("\n## ")]
    documented = set(re.findall(r"`(fathom_[a-z_]+)`", section))
    exported = _exported_names()
    assert documented == exported, {
        "documented, not exported": sorted(documented - exported),
        "exported, not documented": sorted(exported - documented),
    }


def _samples(served: Served) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = served.client.get("/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _answer(request: dict[str, Any]) -> Reply:
    for n, text in documents(request).items():
        if "forty seconds" in text:
            return Reply(text=f"The pump restarts after forty seconds [{n}].", usage=(120, 30))
    return Reply(text="Not found in the documents.")


def test_llm_answers_count_latency_tokens_cost_cache_and_the_answer_stage(serve):
    with ScriptedLLMServer(_answer) as llm:
        served: Served = serve(
            llm="openai:scripted", llm_base_url=llm.url, llm_prices={"scripted": (2.0, 8.0)}
        )
        reader = served.key()
        served.upload(served.key(admin=True), text="# Pumps\n\nThe pump restarts after forty seconds.")
        for _ in range(2):  # the second is answered from the answer cache
            response = served.client.post(
                "/v1/ask", json={"query": "When does the pump restart?"}, headers=reader
            )
            assert response.status_code == 200 and not response.json()["abstained"], response.text
    samples = _samples(served)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    model = {"model": "scripted"}
    assert value("fathom_llm_request_duration_seconds_count", outcome="ok", **model) == 1
    assert value("fathom_llm_tokens_total", direction="in", **model) == 120
    assert value("fathom_llm_tokens_total", direction="out", **model) == 30
    assert value("fathom_llm_cost_usd_total", **model) == (120 * 2.0 + 30 * 8.0) / 1e6
    assert value("fathom_cache_requests_total", cache="answer", result="miss") == 1
    assert value("fathom_cache_requests_total", cache="answer", result="hit") == 1
    for stage in ("auth", "ask", "retrieve", "lexical", "dense", "answer", "generation", "verification"):
        assert value("fathom_stage_duration_seconds_count", stage=stage) >= 1, stage
