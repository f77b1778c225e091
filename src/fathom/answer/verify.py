"""Verification of generated answers: every sentence must be supported by what it cites.

The answer is split into sentences; citation ids that were not in the context
are dropped; each sentence is compared with the sentences of the chunks it
cites. Its support is the share of its informative terms found in the best
matching passage (one sentence or two adjacent ones), mixed with the embedding
similarity of the two. Numbers, e-mail addresses and other specific tokens of
the sentence must appear in that passage, or the sentence is unsupported: a
changed figure is the most common fabrication. A supported sentence cites that
passage as its verbatim quote, with offsets into the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fathom.answer.context import ContextChunk
from fathom.answer.extractive import QUESTION_WORDS
from fathom.domain import Citation, SentenceSupport
from fathom.embed.base import Embedder
from fathom.ingest.chunk import sentence_spans

__all__ = ["Verification", "Verifier", "split_sentences"]

_LEXICAL_WEIGHT = 0.6
_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# A sentence ends at . ! ? before a non-marker, or after its [n] markers unless lower-case
# text or punctuation continues it (a list item or a "> quote" starts a new one), or at a newline.
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[^\s\[])|(?<=\d\])\s+(?=[^\sa-z\[,;:.!?)])|\n+")
_SPECIFIC = re.compile(r"[\w.+-]+@[\w.-]+|\S*\d\S*")
_EMBEDDED_SPANS = 4
_NAME = re.compile(r"\b[A-Z][\w-]*[A-Za-z0-9]\b")
# Capitalised words that are not names (pronouns, sentence openers after a colon, and the like).
_COMMON_CAPITALISED = frozenset(["i", "the", "a", "an", "this", "that", "it", "in", "on", "for", "and", "or"])


def split_sentences(text: str) -> list[str]:
    """Sentences of a generated answer, each keeping the ``[n]`` markers that follow it."""
    return [part.strip() for part in _SPLIT.split(text) if part and part.strip()]


def _specifics(text: str) -> set[str]:
    """Numbers, addresses and proper nouns: the tokens a fabrication most often changes."""
    tokens = {token.strip(".,;:!?()[]\"'").lower() for token in _SPECIFIC.findall(text)}
    names = _NAME.findall(text)
    tokens.update(name.lower() for name in names[1:] if name.lower() not in _COMMON_CAPITALISED)
    # A capitalised first word is usually just the sentence's opening, so it counts only
    # when it cannot be one: a name with a capital or digit inside ("QuixotrelNova", "GPT4").
    if names and names[0].lower() not in _COMMON_CAPITALISED:
        first = names[0]
        if not text.startswith(first) or re.search(r"[A-Z0-9]", first[1:]):
            tokens.add(first.lower())
    return tokens - {""}


@dataclass(frozen=True, slots=True)
class Verification:
    """A verified answer: text with renumbered ``[n]`` markers, its citations and per-sentence support."""

    text: str
    citations: tuple[Citation, ...]
    sentences: tuple[SentenceSupport, ...]
    groundedness: float
    dropped_citations: int
    removed_sentences: int

    @property
    def supported(self) -> bool:
        return any(s.supported for s in self.sentences)


@dataclass(frozen=True, slots=True)
class _Passage:
    chunk: ContextChunk
    start: int  # offsets in the chunk text
    end: int
    text: str
    terms: frozenset[str]


class Verifier:
    """Scores generated sentences against their cited chunks (see the module docstring)."""

    def __init__(
        self,
        embedder: Embedder,
        analyze: Callable[[str], list[str]],
        *,
        min_support: float = 0.5,
        policy: str = "remove",
    ) -> None:
        self._embedder = embedder
        self._analyze = analyze
        self._min_support = min_support
        self._policy = policy
        self._stop_terms = frozenset(t for word in QUESTION_WORDS for t in analyze(word))

    def _terms(self, text: str) -> frozenset[str]:
        return frozenset(t for t in self._analyze(text) if t not in self._stop_terms)

    def _passages(self, chunk: ContextChunk) -> list[_Passage]:
        text = chunk.hit.text
        spans = sentence_spans(text)
        windows = spans + [(a[0], b[1]) for a, b in zip(spans, spans[1:], strict=False)]
        return [_Passage(chunk, a, b, text[a:b], self._terms(text[a:b])) for a, b in windows]

    def verify(self, answer: str, context: Sequence[ContextChunk]) -> Verification:
        """Verify ``answer`` (already unmasked and sanitised) against the chunks it was given."""
        by_id = {chunk.n: chunk for chunk in context}
        passages: dict[int, list[_Passage]] = {}
        dropped = 0
        claims: list[tuple[str, list[int]]] = []
        for sentence in split_sentences(answer):
            ids: list[int] = []
            for match in _MARKER.finditer(sentence):
                for raw in re.split(r"[,;]", match.group(1)):
                    n = int(raw)
                    if n in by_id:
                        if n not in ids:
                            ids.append(n)
                    else:
                        dropped += 1
            claim = _MARKER.sub("", sentence).strip()
            if claim:
                claims.append((claim, ids))
        scored = self._score_all([(claim, [by_id[n] for n in ids]) for claim, ids in claims], passages)

        citations: list[Citation] = []
        numbers: dict[tuple[int, int, int], int] = {}
        parts: list[str] = []
        sentences: list[SentenceSupport] = []
        supported_chars = total_chars = removed = 0
        for (claim, _ids), (support, quotes) in zip(claims, scored, strict=True):
            supported = support >= self._min_support and bool(quotes)
            total_chars += len(claim)
            if supported:
                supported_chars += len(claim)
            elif self._policy == "remove":
                removed += 1
                sentences.append(SentenceSupport(claim, (), support, False))
                continue
            cited: list[int] = []
            for passage in quotes if supported else []:
                hit = passage.chunk.hit
                key = (hit.chunk_id, passage.start, passage.end)
                if key not in numbers:
                    numbers[key] = len(citations) + 1
                    citations.append(
                        Citation(
                            n=numbers[key],
                            doc_id=hit.doc_id,
                            chunk_id=hit.chunk_id,
                            source=hit.source,
                            title=hit.title,
                            quote=passage.text,
                            start=hit.start + passage.start,
                            end=hit.start + passage.end,
                            heading_path=hit.heading_path,
                        )
                    )
                cited.append(numbers[key])
            markers = "".join(f"[{n}]" for n in cited)
            parts.append(f"{claim} {markers}" if markers else claim)
            sentences.append(SentenceSupport(claim, tuple(cited), support, supported))
        groundedness = supported_chars / total_chars if total_chars else 0.0
        return Verification(
            text=" ".join(parts),
            citations=tuple(citations),
            sentences=tuple(sentences),
            groundedness=round(groundedness, 4),
            dropped_citations=dropped,
            removed_sentences=removed,
        )

    def _candidates(
        self, claim: str, chunks: list[ContextChunk], cache: dict[int, list[_Passage]]
    ) -> list[tuple[float, _Passage]]:
        """The passages of the cited chunks that best cover the claim's terms, with that coverage."""
        terms = self._terms(claim)
        if not chunks or not terms:
            return []
        specifics = _specifics(claim)
        candidates: list[tuple[float, _Passage]] = []
        for chunk in chunks:
            if chunk.n not in cache:
                cache[chunk.n] = self._passages(chunk)
            context = " ".join((chunk.hit.title, *chunk.hit.heading_path)).lower()
            for passage in cache[chunk.n]:
                haystack = passage.text.lower() + " " + context
                if not all(token in haystack for token in specifics):
                    continue  # a figure, address or name the passage does not contain
                candidates.append((len(terms & passage.terms) / len(terms), passage))
        candidates.sort(key=lambda c: (-c[0], c[1].end - c[1].start))
        # Similarity adds at most (1 - _LEXICAL_WEIGHT): passages that cannot reach the bar are not embedded.
        reachable = self._min_support - (1 - _LEXICAL_WEIGHT)
        return [c for c in candidates[:_EMBEDDED_SPANS] if _LEXICAL_WEIGHT * c[0] >= reachable]

    def _score_all(
        self, claims: list[tuple[str, list[ContextChunk]]], cache: dict[int, list[_Passage]]
    ) -> list[tuple[float, list[_Passage]]]:
        """Each claim's support and the best passage of each cited chunk that supports it.

        All claims and candidate passages are embedded in one batch.
        """
        candidates = [self._candidates(claim, chunks, cache) for claim, chunks in claims]
        texts: dict[str, int] = {}
        for (claim, _chunks), found in zip(claims, candidates, strict=True):
            if found:
                for text in (claim, *(p.text for _, p in found)):
                    texts.setdefault(text, len(texts))
        vectors = self._embedder.embed_documents(list(texts)) if texts else np.zeros((0, 1), np.float32)
        results: list[tuple[float, list[_Passage]]] = []
        for (claim, _chunks), found in zip(claims, candidates, strict=True):
            if not found:
                results.append((0.0, []))
                continue
            anchor = vectors[texts[claim]]
            scored = [
                (
                    _LEXICAL_WEIGHT * lexical
                    + (1 - _LEXICAL_WEIGHT) * max(float(vectors[texts[passage.text]] @ anchor), 0.0),
                    passage,
                )
                for lexical, passage in found
            ]
            scored.sort(key=lambda s: -s[0])
            # One quote per cited chunk that supports the claim on its own.
            quotes: list[_Passage] = []
            for score, passage in scored:
                if score >= self._min_support and all(q.chunk.n != passage.chunk.n for q in quotes):
                    quotes.append(passage)
            results.append((scored[0][0], quotes))
        return results
