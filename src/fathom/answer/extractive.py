"""The extractive answerer: picks the best-supported sentences of the top chunks and cites them.

No model generates text, so every answer sentence is a verbatim quote of a
document. A sentence's *support* mixes how much of the question's informative
vocabulary it (or its section heading and title) contains, weighted by IDF, with
its embedding similarity to the question. When no sentence reaches the
configured minimum, the answerer abstains rather than guess.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fathom.domain import Answer, Citation, Hit, SentenceSupport
from fathom.embed.base import Embedder
from fathom.embed.cache import TextVectorCache
from fathom.ingest.chunk import sentence_spans

__all__ = ["ABSTAIN_MESSAGE", "QUESTION_WORDS", "ExtractiveAnswerer"]

ABSTAIN_MESSAGE = "I could not find an answer to that in your documents."

# Words that carry no information about what is being asked.
QUESTION_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "into",
        "about",
        "and",
        "or",
        "but",
        "not",
        "no",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "done",
        "has",
        "have",
        "had",
        "having",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "they",
        "them",
        "their",
        "his",
        "her",
        "than",
        "then",
        "so",
        "such",
        "if",
        "any",
        "some",
        "all",
        "each",
        "per",
        "via",
        "also",
        "just",
        "more",
        "most",
        "much",
        "many",
        "very",
        "use",
        "used",
        "using",
        "according",
        "describe",
        "described",
        "explain",
        "tell",
        "give",
        "list",
        "name",
        "please",
        "s",
    ]
)
_MAX_SENTENCE_CHARS = 500
_LEXICAL_WEIGHT = 0.65
_MAX_EMBEDDED_CANDIDATES = 24
# Candidate sentence vectors kept (about 1.5 KiB each with a 384-dimension model).
_SENTENCE_CACHE_SIZE = 8192


@dataclass(frozen=True, slots=True)
class _Candidate:
    hit_rank: int
    hit: Hit
    start: int  # offsets in the document text
    end: int
    text: str
    terms: frozenset[str]
    coverage: float
    similarity: float

    @property
    def support(self) -> float:
        return _LEXICAL_WEIGHT * self.coverage + (1 - _LEXICAL_WEIGHT) * max(self.similarity, 0.0)


def _windows(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split an over-long sentence into word-aligned windows."""
    out: list[tuple[int, int]] = []
    cursor = start
    while end - cursor > _MAX_SENTENCE_CHARS:
        cut = text.rfind(" ", cursor, cursor + _MAX_SENTENCE_CHARS)
        if cut <= cursor:
            cut = cursor + _MAX_SENTENCE_CHARS
        out.append((cursor, cut))
        cursor = cut
        while cursor < end and text[cursor].isspace():
            cursor += 1
    if end > cursor:
        out.append((cursor, end))
    return out


class ExtractiveAnswerer:
    """Answers from the retrieved chunks with verbatim, cited sentences."""

    def __init__(
        self,
        embedder: Embedder,
        analyze: Callable[[str], list[str]],
        document_frequencies: Callable[[str, Sequence[str]], tuple[int, dict[str, int]]],
        *,
        max_sentences: int = 3,
        min_support: float = 0.45,
    ) -> None:
        self._embedder = embedder
        # The same chunks come back for many questions: their sentences are embedded once.
        self._sentence_vectors = TextVectorCache(embedder.embed_documents, _SENTENCE_CACHE_SIZE)
        self._analyze = analyze
        self._document_frequencies = document_frequencies
        self._max_sentences = max_sentences
        self._min_support = min_support
        # Compared after stemming ("does" -> "doe"), so the stop list is stemmed the same way.
        self._stop_terms = frozenset(t for word in QUESTION_WORDS for t in analyze(word))

    def _term_weights(self, question: str, tenant: str) -> dict[str, float]:
        terms = [t for t in dict.fromkeys(self._analyze(question)) if t not in self._stop_terms]
        if not terms:
            return {}
        total, frequencies = self._document_frequencies(tenant, terms)
        return {t: math.log(1 + (total - frequencies[t] + 0.5) / (frequencies[t] + 0.5)) for t in terms}

    def answer(self, question: str, query_vector: np.ndarray, hits: Sequence[Hit], tenant: str) -> Answer:
        """Cited verbatim sentences from ``hits`` (term weights from ``tenant``'s statistics), or an
        abstention."""
        weights = self._term_weights(question, tenant)
        candidates = self._candidates(hits, weights, query_vector)
        if not candidates:
            return Answer(ABSTAIN_MESSAGE, (), True, tuple(hits))
        ranked = sorted(candidates, key=lambda c: (-c.support, c.hit_rank, c.start))
        best = ranked[0]
        if best.support < self._min_support:
            return Answer(ABSTAIN_MESSAGE, (), True, tuple(hits))
        chosen: list[_Candidate] = [best]
        for candidate in ranked[1:]:
            if len(chosen) >= self._max_sentences:
                break
            if candidate.support < max(self._min_support, 0.85 * best.support):
                break
            if any(_redundant(candidate, other) for other in chosen):
                continue
            chosen.append(candidate)
        # Read in document order: by the hit they came from, then by position.
        chosen.sort(key=lambda c: (c.hit_rank, c.start))
        parts: list[str] = []
        citations: list[Citation] = []
        sentences: list[SentenceSupport] = []
        for n, candidate in enumerate(chosen, start=1):
            parts.append(f"{candidate.text} [{n}]")
            sentences.append(SentenceSupport(candidate.text, (n,), candidate.support, True))
            citations.append(
                Citation(
                    n=n,
                    doc_id=candidate.hit.doc_id,
                    chunk_id=candidate.hit.chunk_id,
                    source=candidate.hit.source,
                    title=candidate.hit.title,
                    quote=candidate.text,
                    start=candidate.start,
                    end=candidate.end,
                    heading_path=candidate.hit.heading_path,
                )
            )
        # Every sentence is a verbatim quote of its citation: fully grounded by construction.
        return Answer(
            " ".join(parts),
            tuple(citations),
            False,
            tuple(hits),
            groundedness=1.0,
            sentences=tuple(sentences),
        )

    def _candidates(
        self, hits: Sequence[Hit], weights: dict[str, float], query_vector: np.ndarray
    ) -> list[_Candidate]:
        total_weight = sum(weights.values())
        raw: list[tuple[int, Hit, int, int, str, frozenset[str], float]] = []
        seen_text: set[str] = set()
        for rank, hit in enumerate(hits):
            context = set(self._analyze(" ".join((hit.title, *hit.heading_path))))
            for a, b in sentence_spans(hit.text):
                for start, end in _windows(hit.text, a, b):
                    text = hit.text[start:end]
                    words = text.split()
                    # Headings and fragments are context, not answers.
                    if len(words) < 2 or text.startswith("#") or (text.endswith(":") and len(words) <= 10):
                        continue
                    key = " ".join(words).lower()
                    if key in seen_text:
                        continue
                    seen_text.add(key)
                    terms = frozenset(self._analyze(text))
                    matched = sum(w for t, w in weights.items() if t in terms or t in context)
                    coverage = matched / total_weight if total_weight else 0.0
                    raw.append((rank, hit, hit.start + start, hit.start + end, text, terms, coverage))
        if not raw:
            return []
        if len(raw) > _MAX_EMBEDDED_CANDIDATES:
            # Embedding sentences dominates answer latency; ones that cover little of the
            # question cannot win, so only the best-covering sentences are embedded.
            raw = sorted(raw, key=lambda r: (-r[6], r[0]))[:_MAX_EMBEDDED_CANDIDATES]
        vectors = self._sentence_vectors([r[4] for r in raw])
        similarities = vectors @ np.asarray(query_vector, dtype=np.float32)
        return [
            _Candidate(rank, hit, start, end, text, terms, coverage, float(sim))
            for (rank, hit, start, end, text, terms, coverage), sim in zip(raw, similarities, strict=True)
        ]


def _redundant(a: _Candidate, b: _Candidate) -> bool:
    if not a.terms or not b.terms:
        return False
    overlap = len(a.terms & b.terms) / len(a.terms | b.terms)
    return overlap > 0.7
