"""``fathom eval qa``: answer quality on a golden question set, against the current home.

Each line of the set is a JSON object with ``question``, ``answer_must_contain`` (strings
a correct answer contains), ``evidence`` (an exact substring of the source that answers
it) and ``answerable`` (false: the documents do not say, and the right output is an
abstention). ``id`` and ``source`` are optional.

Besides evidence (is the gold passage among the search hits?), answers themselves are scored:
``answer_cites_evidence`` (a cited sentence contains the gold evidence), ``answer_contains``
(the answer holds every expected key phrase) and ``answer_correct`` (it holds them and quotes no
echo of the question: a cited sentence that is the question, or restates it, is wrong whatever
else the answer says; the rule is :func:`fathom.answer.extractive.echoes_question`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fathom.answer.extractive import QUESTION_WORDS, echoes_question
from fathom.api import Fathom
from fathom.errors import ConfigError
from fathom.eval.metrics import percentile
from fathom.index.lexical import analyze

__all__ = ["AnswerScore", "QAReport", "QuestionResult", "evaluate_qa", "load_golden", "score_answer"]

# Called with ("question", completed, total).
QAProgress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class GoldenQuestion:
    id: str
    question: str
    must_contain: tuple[str, ...]
    evidence: str
    answerable: bool


@dataclass(frozen=True, slots=True)
class QuestionResult:
    """What fathom did with one golden question."""

    id: str
    answerable: bool
    abstained: bool
    evidence_rank: int | None  # 1-based rank of the first search hit holding the evidence
    evidence_cited: bool
    contains_answer: bool
    latency_ms: float
    answer: str
    cites_evidence: bool = False  # a cited sentence contains the gold evidence
    echo: bool = False  # a cited sentence is the question or restates it
    correct: bool = False  # answered with every key phrase and no echo


@dataclass(slots=True)
class QAReport:
    """Rates over the golden set; ``None`` where the set has no question of that kind."""

    questions: int
    answerable: int
    unanswerable: int
    evidence_hit_at_1: float | None
    evidence_hit_at_5: float | None
    answer_contains: float | None
    answer_cites_evidence: float | None
    answer_correct: float | None
    echo_rate: float | None  # of the answered questions, the share quoting an echo
    abstention_precision: float | None
    abstention_recall: float | None
    p50_ms: float
    p95_ms: float
    results: list[QuestionResult]

    def to_dict(self, *, per_question: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            key: round(value, 4) if isinstance(value, float) else value
            for key, value in asdict(self).items()
            if key != "results"
        }
        if per_question:
            data["results"] = [asdict(r) for r in self.results]
        return data


def load_golden(path: str | Path) -> list[GoldenQuestion]:
    """Read a golden QA set (JSON lines).

    Raises:
        ConfigError: the file is missing or a line is malformed.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"no golden QA file at {file}")
    questions: list[GoldenQuestion] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            questions.append(
                GoldenQuestion(
                    id=str(row.get("id", f"line-{number}")),
                    question=str(row["question"]),
                    must_contain=tuple(str(s) for s in row.get("answer_must_contain", [])),
                    evidence=str(row.get("evidence") or ""),
                    answerable=bool(row.get("answerable", True)),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise ConfigError(
                f"{file}:{number} is not a golden question (needs at least 'question')"
            ) from None
    if not questions:
        raise ConfigError(f"{file} holds no questions")
    return questions


@dataclass(frozen=True, slots=True)
class AnswerScore:
    """Answer-level scores of one answer against its golden question."""

    cites_evidence: bool
    contains: bool
    echo: bool
    correct: bool


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


_STOP_TERMS = frozenset(t for word in QUESTION_WORDS for t in analyze(word))


def _content_terms(text: str) -> frozenset[str]:
    return frozenset(analyze(text)) - _STOP_TERMS


def score_answer(
    question: str,
    answer: str,
    quotes: Sequence[str],
    must_contain: Sequence[str],
    evidence: str,
    *,
    abstained: bool = False,
    answerable: bool = True,
) -> AnswerScore:
    """Score an answer itself (its text and the sentences it cites), not the search behind it.

    An abstention scores nothing: whether it was right is the abstention figures' business.
    """
    if abstained:
        return AnswerScore(False, False, False, False)
    question_terms = _content_terms(question)
    quoted = list(quotes) or [answer]
    echo = any(echoes_question(q, _content_terms(q), question_terms) for q in quoted)
    gold = _normal(evidence)
    cites = bool(gold) and any(gold in _normal(q) for q in quoted)
    text = answer.casefold()
    contains = all(s.casefold() in text for s in must_contain)
    return AnswerScore(cites, contains, echo, answerable and contains and not echo)


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def evaluate_qa(fathom: Fathom, path: str | Path, *, progress: QAProgress | None = None) -> QAReport:
    """Ask every golden question and score retrieval evidence, answers and abstentions."""
    golden = load_golden(path)
    results: list[QuestionResult] = []
    for number, item in enumerate(golden, start=1):
        started = time.perf_counter()
        answer = fathom.ask(item.question)
        latency_ms = (time.perf_counter() - started) * 1000
        hits = fathom.search(item.question, k=5)
        rank = next(
            (i for i, hit in enumerate(hits, start=1) if item.evidence and item.evidence in hit.text), None
        )
        text = answer.answer.casefold()
        score = score_answer(
            item.question,
            answer.answer,
            [c.quote for c in answer.citations],
            item.must_contain,
            item.evidence,
            abstained=answer.abstained,
            answerable=item.answerable,
        )
        results.append(
            QuestionResult(
                id=item.id,
                answerable=item.answerable,
                abstained=answer.abstained,
                evidence_rank=rank,
                evidence_cited=bool(item.evidence)
                and any(item.evidence in c.quote or c.quote in item.evidence for c in answer.citations),
                contains_answer=not answer.abstained and all(s.casefold() in text for s in item.must_contain),
                latency_ms=latency_ms,
                answer=answer.answer,
                cites_evidence=score.cites_evidence,
                echo=score.echo,
                correct=score.correct,
            )
        )
        if progress is not None:
            progress("question", number, len(golden))
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    abstained = [r for r in results if r.abstained]
    answered = [r for r in results if not r.abstained]
    with_evidence = [r for r, g in zip(results, golden, strict=True) if g.answerable and g.evidence]
    latencies = [r.latency_ms for r in results]
    return QAReport(
        questions=len(results),
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        evidence_hit_at_1=_ratio(sum(r.evidence_rank == 1 for r in with_evidence), len(with_evidence)),
        evidence_hit_at_5=_ratio(sum(r.evidence_rank is not None for r in with_evidence), len(with_evidence)),
        answer_contains=_ratio(sum(r.contains_answer for r in answerable), len(answerable)),
        answer_cites_evidence=_ratio(sum(r.cites_evidence for r in with_evidence), len(with_evidence)),
        answer_correct=_ratio(sum(r.correct for r in answerable), len(answerable)),
        echo_rate=_ratio(sum(r.echo for r in answered), len(answered)),
        abstention_precision=_ratio(sum(not r.answerable for r in abstained), len(abstained)),
        abstention_recall=_ratio(sum(r.abstained for r in unanswerable), len(unanswerable)),
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        results=results,
    )
