"""Must hold: on the seed questions, every sentence ``ask`` returns as supported is supported by its quote.

The scripted provider (a local OpenAI-compatible server) reads the fenced
documents fathom sends, echoes some of their sentences with the right citation,
and invents others: a copied sentence with its figures changed, one with a
name swapped, and a claim found nowhere, each cited to a real document.
"""

from __future__ import annotations

import json
import re

import pytest

from fathom import Fathom
from fathom.llm.testing import EchoAndInvent, ScriptedLLMServer, normalized
from tests.conftest import require_shared

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def test_every_supported_sentence_is_supported_by_its_quote(tmp_path_factory, embedder):
    seeds = require_shared("corpus", "seeds")
    rows = [
        json.loads(line) for line in require_shared("data", "seeds-qa", "dev.jsonl").read_text().splitlines()
    ]
    script = EchoAndInvent()
    with ScriptedLLMServer(script) as server:
        home = tmp_path_factory.mktemp("seeds-llm")
        with Fathom(
            home=home, embedder=embedder, llm="openai:scripted", llm_base_url=server.url, answer_cache_size=0
        ) as fathom:
            assert fathom.ingest([seeds]).ok
            answers = [fathom.ask(row["question"]) for row in rows]
            texts = {c.doc_id: fathom.document_text(c.doc_id) for a in answers for c in a.citations}

    supported_total = kept_echoes = 0
    for row, answer in zip(rows, answers, strict=True):
        assert answer.model == "openai:scripted", (row["id"], answer.notes)
        by_n = {c.n: c for c in answer.citations}
        for citation in answer.citations:  # quotes are verbatim document text
            assert texts[citation.doc_id][citation.start : citation.end] == citation.quote
        for sentence in answer.sentences:
            if not sentence.supported:
                continue
            supported_total += 1
            claim = normalized(sentence.text)
            assert claim not in script.invented, f"{row['id']}: invented sentence passed: {sentence.text}"
            assert claim in script.echoed, f"{row['id']}: unexpected supported sentence {sentence.text}"
            quotes = " ".join(by_n[n].quote for n in sentence.citations)
            assert sentence.citations and _words(sentence.text) <= _words(quotes), (
                row["id"],
                sentence,
                quotes,
            )
            kept_echoes += 1
        assert "Zorblax" not in answer.answer and "Quixotrel" not in answer.answer
    # Verification must not pass the test by rejecting everything: most echoes survive.
    assert kept_echoes >= 0.8 * len(script.echoed), (
        f"kept {kept_echoes} of {len(script.echoed)} echoed sentences"
    )
    assert len(script.invented) >= 2 * len(rows)
