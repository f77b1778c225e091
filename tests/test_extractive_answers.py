"""The extractive answerer's rules: few sentences embedded, no question echoes, values rank."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from fathom.answer.extractive import EMBEDDED_CANDIDATES, ExtractiveAnswerer, echoes_question, stated_values
from fathom.domain import Hit
from fathom.embed.hashing import HashingEmbedder
from fathom.index.lexical import analyze


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting the passages it embeds."""

    def __init__(self) -> None:
        super().__init__(256)
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.embedded.extend(texts)
        return super().embed_documents(texts)


def _frequencies(_tenant: str, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
    return 100, dict.fromkeys(terms, 5)


def _hit(text: str, chunk_id: int = 1, start: int = 0, heading: tuple[str, ...] = ()) -> Hit:
    return Hit(
        doc_id="d",
        chunk_id=chunk_id,
        source="mem://d",
        title="Guide",
        score=1.0,
        text=text,
        start=start,
        end=start + len(text),
        heading_path=heading,
    )


def _answerer(embedder: CountingEmbedder, **kwargs: int) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(embedder, analyze, _frequencies, min_support=0.2, **kwargs)


def _stems(text: str) -> frozenset[str]:
    from fathom.answer.extractive import QUESTION_WORDS

    stop = {t for w in QUESTION_WORDS for t in analyze(w)}
    return frozenset(analyze(text)) - stop


@pytest.mark.parametrize(
    ("sentence", "question", "echo"),
    [
        # The question itself, as a document heading or interview prompt.
        (
            "Design a production-grade RAG system for enterprise knowledge search.",
            "Design a production-grade RAG system for enterprise knowledge search",
            True,
        ),
        # Any question of the document is a prompt, not an answer.
        ("How do you choose chunk size and chunking strategy?", "What chunk size is best?", True),
        ("Why does it fail?)", "What fails?", True),
        # Restating the question in other forms of its words is still an echo.
        (
            "Production RAG design: chunk sizes and overlaps recommended",
            "What chunk size and overlap does the production RAG design recommend?",
            True,
        ),
        # Answers that mirror the question's wording add the answer itself.
        ("Sea otters hold hands while they sleep.", "what do sea otters hold while they sleep", False),
        (
            "The observatory recorded 412 meteors in August.",
            "How many meteors did the observatory record in August?",
            False,
        ),
        (
            "The code word for the harbour crane inspection is secretx9q.",
            "What is the code word for the harbour crane inspection?",
            False,
        ),
        # Answers add what the question lacks.
        (
            "Rate Limiting: 1000 requests per minute per API key",
            "What rate limit does the API enforce?",
            False,
        ),
        ("* Never log raw prompts", "What should you never do with raw prompts?", False),
        ("HNSW (most popular)", "Which vector index type is the most popular?", False),
    ],
)
def test_echo_rule(sentence: str, question: str, echo: bool) -> None:
    assert echoes_question(sentence, _stems(sentence), _stems(question)) is echo


@pytest.mark.parametrize(
    ("sentence", "asked", "stated"),
    [
        ("recursive chunking (512 tokens, 50 overlap)", {"size", "overlap"}, {"size", "overlap"}),
        ("at 512 tokens with 50–100 token overlap", {"size", "overlap"}, {"size", "overlap"}),
        ("* Overlap (10–20%)", {"size", "overlap"}, {"overlap"}),
        ("* 300–800 tokens", {"size", "overlap"}, {"size"}),
        # A number near the question's words is not a value of what was asked.
        ("A 2x difference in chunk size can swing accuracy by 15–20%.", {"size", "overlap"}, set()),
        ("Rate Limiting: 1000 requests per minute", {"rate", "limit"}, {"rate", "limit"}),
        ("sub-100ms budgets", {"budget"}, {"budget"}),
        ("Fixed-size chunking splits by token count with overlap.", {"size", "overlap"}, set()),
    ],
)
def test_stated_values(sentence: str, asked: set[str], stated: set[str]) -> None:
    stem = {w: analyze(w)[0] for w in asked}
    from fathom.answer.extractive import MAGNITUDE_WORDS, UNIT_WORDS

    units = frozenset(t for w in UNIT_WORDS for t in analyze(w))
    magnitudes = frozenset(t for w in MAGNITUDE_WORDS for t in analyze(w))
    got = stated_values(analyze(sentence), frozenset(stem.values()), magnitudes, units)
    assert got == {stem[w] for w in stated}


def test_only_the_first_stage_shortlist_is_embedded() -> None:
    embedder = CountingEmbedder()
    lines = [f"Line {i} mentions the quarterly report and other things." for i in range(40)]
    text = "\n".join(lines)
    answerer = _answerer(embedder)
    answer = answerer.answer(
        "When is the quarterly report due?", embedder.embed_query("quarterly report due"), [_hit(text)], "t"
    )
    assert not answer.abstained
    assert len(embedder.embedded) <= EMBEDDED_CANDIDATES
    # Asked again, the same sentences come from the cache.
    answerer.answer("When is the quarterly report due?", embedder.embed_query("x"), [_hit(text)], "t")
    assert len(embedder.embedded) <= EMBEDDED_CANDIDATES


def test_the_question_is_never_quoted_back() -> None:
    embedder = CountingEmbedder()
    question = "Design a production-grade RAG system for enterprise knowledge search"
    text = (
        f"{question}.\nEnterprise search answers employees' questions from internal documents with citations."
    )
    answer = _answerer(embedder).answer(question, embedder.embed_query(question), [_hit(text)], "t")
    assert all(question not in c.quote for c in answer.citations)


def test_a_sentence_stating_the_asked_values_outranks_one_that_only_names_them() -> None:
    embedder = CountingEmbedder()
    text = (
        "Fixed-size chunking splits by token count with overlap, simple but ignores structure.\n"
        "Ingestion: recursive chunking (512 tokens, 50 overlap) then embedding."
    )
    question = "What chunk size and overlap does the design recommend?"
    answer = _answerer(embedder, embedded_candidates=6).answer(
        question, embedder.embed_query(question), [_hit(text)], "t"
    )
    assert answer.sentences[0].text.startswith("Ingestion: recursive chunking (512 tokens, 50 overlap)")


def test_a_restated_question_reads_on_into_the_next_chunk_with_exact_offsets() -> None:
    embedder = CountingEmbedder()
    document = (
        "Intro text about many things here.\nHow do you choose chunk size and overlap?\n"
        "Start with 512 tokens and 50 token overlap for most corpora.\nMore text follows."
    )
    split = document.index("Start with")
    first = _hit(document[:split], chunk_id=1)
    read: list[Hit] = []

    def read_on(hit: Hit) -> Hit | None:
        read.append(hit)
        return _hit(document[hit.end :], chunk_id=hit.chunk_id, start=hit.end)

    question = "What chunk size and overlap should I use?"
    answer = _answerer(embedder).answer(
        question, embedder.embed_query(question), [first], "t", read_on=read_on
    )
    assert read == [first]
    citation = answer.citations[0]
    assert citation.quote == "Start with 512 tokens and 50 token overlap for most corpora."
    assert document[citation.start : citation.end] == citation.quote
    # Without a way to read on, the chunk alone has no answer to quote.
    alone = _answerer(embedder).answer(question, embedder.embed_query(question), [first], "t")
    assert all("512" not in c.quote for c in alone.citations)


def test_a_how_many_question_answered_by_a_number_with_a_unit_does_not_crash() -> None:
    # "how many" asks for a value through a stop word ("many"): a sentence stating a number with
    # a unit answers it, though the word has no IDF weight of its own. This raised KeyError.
    embedder = CountingEmbedder()
    text = "The gateway is fronted by a cache. The gateway serves 1000 requests per minute at peak."
    question = "How many requests does the gateway serve?"
    answer = _answerer(embedder).answer(question, embedder.embed_query(question), [_hit(text)], "t")
    assert not answer.abstained
    assert "1000 requests per minute" in answer.answer


def test_a_sentence_from_a_chunk_about_another_named_subject_is_no_answer() -> None:
    embedder = CountingEmbedder()
    other = "GameForge AI contact.\nSlack Workspace: gameforge-dev.slack.com"
    asked = "TechCore contact.\nSlack Workspace: techcore-dev.slack.com"
    question = "What is the Slack workspace of TechCore?"
    vector = embedder.embed_query(question)
    answerer = _answerer(embedder)
    assert answerer.answer(question, vector, [_hit(other)], "t").abstained
    answer = answerer.answer(question, vector, [_hit(asked)], "t")
    assert not answer.abstained
    assert "techcore-dev.slack.com" in answer.answer
