"""The extractive answerer: picks the best-supported sentences of the top chunks and cites them.

No model generates text, so every answer sentence is a verbatim quote of a
document. Answering runs in two stages:

1. A lexical first stage scores every sentence of the top chunks: how much of the
   question's informative vocabulary it (or its section heading and title) contains,
   weighted by IDF. A question that asks for a value ("chunk size", "rate limit", "phone
   number") credits a sentence stating a number next to that word, or with a unit
   ("512 tokens, 50 overlap") with the value words the number goes with, plus a bonus for
   each of them.
   Sentences that *echo* the question are dropped here: a question of the document, or
   a sentence that adds no term the question does not already have, is never an answer.
2. Only the few best first-stage sentences (``embedded_candidates``) are embedded, in one
   batch through a cache of sentence vectors, and a sentence's *support* mixes its
   first-stage score with its embedding similarity to the question. One that is a
   near-identical paraphrase of the question (similarity at or above
   ``ECHO_SIMILARITY``) is an echo too.

When no sentence reaches the configured minimum support, or the best one's chunk (text, title
and headings) lacks a capitalised name the question asks about ("TechCore"), the answerer
abstains rather than guess.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from fathom.domain import Answer, Citation, Hit, SentenceSupport
from fathom.embed.base import Embedder
from fathom.embed.cache import TextVectorCache
from fathom.ingest.chunk import sentence_spans

__all__ = [
    "ABSTAIN_MESSAGE",
    "ECHO_SIMILARITY",
    "QUANTITY_WORDS",
    "QUESTION_WORDS",
    "MAGNITUDE_WORDS",
    "UNIT_WORDS",
    "ExtractiveAnswerer",
    "echoes_question",
    "stated_values",
]

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
# Words of a question that ask for a value: a sentence stating a number answers them.
QUANTITY_WORDS = frozenset(
    "size overlap number count limit rate latency budget length duration timeout price cost port "  # noqa: SIM905
    "version percentage ratio threshold range dimension dimensions capacity memory temperature "
    "hours hour minutes seconds days phone email address url many much long often big fast "
    "old large small".split()
)
# Value words a number with a unit answers without naming them ("512 tokens" is a size).
MAGNITUDE_WORDS = frozenset(
    "size number count length amount range many much long big large small capacity memory "  # noqa: SIM905
    "duration budget".split()
)
# Units a number is stated in ("512 tokens", "100ms", "1000 requests per minute").
UNIT_WORDS = frozenset(
    "token tokens char chars character characters word words byte bytes kb mb gb tb ms "  # noqa: SIM905
    "millisecond milliseconds second seconds sec minute minutes min hour hours day days week "
    "weeks month months year years request requests call calls user users page pages line lines "
    "row rows dimension dimensions percent step steps query queries core cores".split()
)
# A sentence at least this similar to the question (cosine) is the question reworded: the
# question itself scores 0.99 or more, while answers that mirror its wording reach 0.92
# ("How many meteors did the observatory record in August?" against "The observatory
# recorded 412 meteors in August.").
ECHO_SIMILARITY = 0.97
# Tokens between a number and the question term or unit it belongs to.
_VALUE_WINDOW = 3
_VALUE_BONUS = 0.15
_MAX_SENTENCE_CHARS = 500
_LEXICAL_WEIGHT = 0.65
# Sentences embedded per question, the best of the lexical first stage, at most
# _SHORTLIST_PER_CHUNK of them from one chunk.
EMBEDDED_CANDIDATES = 6
_SHORTLIST_PER_CHUNK = 3
# A document's own question that covers at least this share of the question (IDF-weighted)
# sends the answerer on into the following chunk, at most _READ_ON_MAX times per question.
_READ_ON_SHARE = 0.2
_READ_ON_MAX = 2
# First stage: weight of a question term found only in the title or heading path.
_CONTEXT_DISCOUNT = 0.75
# Candidate sentence vectors kept (about 1.5 KiB each with a 384-dimension model).
_SENTENCE_CACHE_SIZE = 8192
# Chunk texts whose sentence spans are kept (segmenting is a few ms per answer otherwise).
_SPANS_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class _Candidate:
    hit_rank: int
    hit: Hit
    start: int  # offsets in the document text
    end: int
    text: str
    terms: frozenset[str]
    coverage: float  # first stage: IDF-weighted share of the question, value bonus included
    similarity: float = 0.0
    off_subject: bool = False  # its chunk (text, title, headings) lacks a name the question asks about

    @property
    def support(self) -> float:
        # Not capped at 1: the value bonus of a sentence that also covers the whole question
        # keeps it ahead of one that states a value but misses the question's subject.
        return _LEXICAL_WEIGHT * self.coverage + (1 - _LEXICAL_WEIGHT) * max(self.similarity, 0.0)


@dataclass(frozen=True, slots=True)
class _Question:
    weights: dict[str, float]  # informative terms -> IDF
    asks_value: bool  # it names a quantity ("size", "rate limit", "phone number")
    value_terms: frozenset[str]  # its quantity words (and "how many": "mani")
    names: frozenset[str] = frozenset()  # terms of its capitalised words past the first ("TechCore")


def echoes_question(sentence: str, content_terms: frozenset[str], question_terms: frozenset[str]) -> bool:
    """Whether a sentence is the question (or a restatement of it) rather than an answer.

    A sentence echoes when it is itself a question (ends with ``?``), or when it has no
    informative term the question lacks: "Design a production-grade RAG system for enterprise
    knowledge search." adds nothing to the question it repeats, while "Sea otters hold hands
    while they sleep." adds the answer ("hands") to "what do sea otters hold while they
    sleep". A sentence with no informative term is not judged here.
    """
    if sentence.rstrip().rstrip("\"'”’)").endswith("?"):
        return True
    if not content_terms or not question_terms:
        return False
    return content_terms <= question_terms


def stated_values(
    tokens: Sequence[str],
    value_terms: frozenset[str],
    magnitude_terms: frozenset[str],
    unit_terms: frozenset[str],
) -> frozenset[str]:
    """The question's value words (``value_terms``) that the analysed sentence ``tokens`` give a
    value for.

    A number answers a value word within ``_VALUE_WINDOW`` tokens of it ("50 overlap",
    "Overlap (10–20%)", "Rate Limiting: 1000"); a number with a unit ("512 tokens", "100ms")
    also answers the generic magnitude words ("size", "length", "how many"), which a sentence
    rarely spells out. "A 2x difference in chunk size" states no chunk size.
    """
    answered: set[str] = set()
    for i, token in enumerate(tokens):
        if not any(ch.isdigit() for ch in token):
            continue
        near = [t for t in tokens[max(0, i - _VALUE_WINDOW) : i + _VALUE_WINDOW + 1] if t != token]
        answered.update(t for t in near if t in value_terms)
        # "100ms" carries its unit inside the token.
        if any(t in unit_terms for t in near) or token.lstrip("0123456789.,-") in unit_terms:
            answered.update(value_terms & magnitude_terms)
    return frozenset(answered)


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
    """Answers from the retrieved chunks with verbatim, cited sentences.

    Args:
        embedded_candidates: sentences embedded per question after the lexical first stage.
    """

    def __init__(
        self,
        embedder: Embedder,
        analyze: Callable[[str], list[str]],
        document_frequencies: Callable[[str, Sequence[str]], tuple[int, dict[str, int]]],
        *,
        max_sentences: int = 3,
        min_support: float = 0.45,
        embedded_candidates: int = EMBEDDED_CANDIDATES,
    ) -> None:
        self._embedder = embedder
        # The same chunks come back for many questions: their sentences are embedded once.
        self._sentence_vectors = TextVectorCache(embedder.embed_documents, _SENTENCE_CACHE_SIZE)
        self._analyze = analyze
        self._document_frequencies = document_frequencies
        self._max_sentences = max_sentences
        self._min_support = min_support
        self._embedded_candidates = max(1, embedded_candidates)

        # Compared after stemming ("does" -> "doe"), so the word lists are stemmed the same way.
        def stems(words: frozenset[str]) -> frozenset[str]:
            return frozenset(t for word in words for t in analyze(word))

        self._stop_terms = stems(QUESTION_WORDS)
        self._quantity_terms = stems(QUANTITY_WORDS)
        self._unit_terms = stems(UNIT_WORDS)
        self._magnitude_terms = stems(MAGNITUDE_WORDS)

    def _question(self, question: str, tenant: str) -> _Question:
        tokens = self._analyze(question)
        terms = [t for t in dict.fromkeys(tokens) if t not in self._stop_terms]
        weights: dict[str, float] = {}
        if terms:
            total, frequencies = self._document_frequencies(tenant, terms)
            weights = {
                t: math.log(1 + (total - frequencies[t] + 0.5) / (frequencies[t] + 0.5)) for t in terms
            }
        # "how many", "how much", "how long": the second word is a stop word ("mani") or not.
        how = {
            b for a, b in zip(tokens, tokens[1:], strict=False) if a == "how" and b in self._quantity_terms
        }
        value_terms = frozenset(t for t in terms if t in self._quantity_terms) | how
        names = frozenset(
            t
            for word in re.findall(r"[^\W_][\w-]*", question)[1:]
            if word[0].isupper() and not word.isupper()
            for t in self._analyze(word)
            if t in weights
        )
        return _Question(weights, bool(value_terms), value_terms, names)

    def answer(
        self,
        question: str,
        query_vector: np.ndarray,
        hits: Sequence[Hit],
        tenant: str,
        *,
        read_on: Callable[[Hit], Hit | None] | None = None,
    ) -> Answer:
        """Cited verbatim sentences from ``hits`` (term weights from ``tenant``'s statistics), or an
        abstention.

        ``read_on`` gives the text that follows a hit in its document (as a hit with exact
        document offsets; None at the end or when it cannot be read): where a hit restates the
        question, the answer is looked for there too.
        """
        candidates = self._candidates(hits, self._question(question, tenant), query_vector, read_on)
        if not candidates:
            return Answer(ABSTAIN_MESSAGE, (), True, tuple(hits))
        ranked = sorted(candidates, key=lambda c: (-c.support, c.hit_rank, c.start))
        best = ranked[0]
        # A sentence about another company than the one asked about is no answer, however well
        # it matches the rest ("the Slack workspace of TechCore" against GameForge's workspace).
        if best.support < self._min_support or best.off_subject:
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
            sentences.append(SentenceSupport(candidate.text, (n,), min(candidate.support, 1.0), True))
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
        self,
        hits: Sequence[Hit],
        question: _Question,
        query_vector: np.ndarray,
        read_on: Callable[[Hit], Hit | None] | None = None,
    ) -> list[_Candidate]:
        weights = question.weights
        question_terms = frozenset(weights)
        total_weight = sum(weights.values())
        first_stage: list[tuple[float, _Candidate]] = []
        seen_text: set[str] = set()
        work: list[tuple[int, Hit, bool]] = [(rank, hit, False) for rank, hit in enumerate(hits)]
        read = 0
        while work:
            rank, hit, continued = work.pop(0)
            context = set(self._analyze(" ".join((hit.title, *hit.heading_path))))
            off_subject = bool(question.names - context - set(self._analyze(hit.text)))
            for a, b in _sentences(hit.text):
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
                    tokens = self._analyze(text)
                    terms = frozenset(tokens)
                    said = {t for t in weights if t in terms}
                    if echoes_question(text, terms - self._stop_terms, question_terms):
                        # The document asks (about) the question here: its answer follows, maybe
                        # past the end of the chunk, so the answerer reads on into the next one.
                        if (
                            read_on is not None
                            and not continued
                            and read < _READ_ON_MAX
                            and _share(said, weights, total_weight) >= _READ_ON_SHARE
                        ):
                            following = read_on(hit)
                            if following is not None:
                                read += 1
                                work.append((rank, following, True))
                        continue
                    matched = said | {t for t in weights if t in context}
                    bonus = 0.0
                    values = (
                        stated_values(tokens, question.value_terms, self._magnitude_terms, self._unit_terms)
                        if question.asks_value
                        else frozenset()
                    )
                    if values:
                        # A stated value answers the quantity words it goes with; each value the
                        # question asks for and the sentence gives earns the bonus.
                        said |= values
                        matched |= values
                        bonus = _VALUE_BONUS * len(values)
                    coverage = _share(matched, weights, total_weight) + bonus
                    # The first stage discounts a term only the heading carries: a section whose
                    # title matches must not crowd its every line into the shortlist.
                    prior = _share(said, weights, total_weight) + _CONTEXT_DISCOUNT * _share(
                        matched - said, weights, total_weight
                    )
                    first_stage.append(
                        (
                            prior + bonus,
                            _Candidate(
                                rank,
                                hit,
                                hit.start + start,
                                hit.start + end,
                                text,
                                terms,
                                coverage,
                                off_subject=off_subject,
                            ),
                        )
                    )
        if not first_stage:
            return []
        # Embedding sentences dominates answer latency; ones the first stage ranks low
        # cannot win, so only the best few are embedded.
        first_stage.sort(key=lambda pc: (-pc[0], pc[1].hit_rank, pc[1].start))
        shortlist: list[_Candidate] = []
        per_hit: dict[int, int] = {}
        for _, candidate in first_stage:
            if len(shortlist) >= self._embedded_candidates:
                break
            if per_hit.get(candidate.hit_rank, 0) < _SHORTLIST_PER_CHUNK:
                per_hit[candidate.hit_rank] = per_hit.get(candidate.hit_rank, 0) + 1
                shortlist.append(candidate)
        vectors = self._sentence_vectors([c.text for c in shortlist])
        similarities = vectors @ np.asarray(query_vector, dtype=np.float32)
        return [
            replace(candidate, similarity=float(sim))
            for candidate, sim in zip(shortlist, similarities, strict=True)
            # A near-identical paraphrase of the question is an echo, not an answer.
            if float(sim) < ECHO_SIMILARITY
        ]


@functools.lru_cache(maxsize=_SPANS_CACHE_SIZE)
def _sentences(text: str) -> tuple[tuple[int, int], ...]:
    """Sentence spans of a chunk's text; the same chunks come back for many questions."""
    return tuple(sentence_spans(text))


def _share(terms: set[str], weights: dict[str, float], total: float) -> float:
    # A value word can be a stop word with no weight ("how many": "mani"); it earns the value
    # bonus, not a share of the question.
    return sum(weights.get(t, 0.0) for t in terms) / total if total else 0.0


def _redundant(a: _Candidate, b: _Candidate) -> bool:
    if not a.terms or not b.terms:
        return False
    overlap = len(a.terms & b.terms) / len(a.terms | b.terms)
    return overlap > 0.7
