"""`fathom eval qa` on a golden set over documents the test writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fathom import Fathom
from fathom.errors import ConfigError
from fathom.eval.qa import evaluate_qa, load_golden, score_answer

pytestmark = [pytest.mark.integration]


def test_qa_eval_scores_evidence_answers_and_abstentions(fathom: Fathom, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "support.md").write_text(
        "# Support\n\nThe support desk is open from 9 AM to 5 PM on weekdays.\n\n"
        "## Escalation\n\nUrgent outages are escalated to the on-call engineer by phone.\n",
        encoding="utf-8",
    )
    (docs / "tea.txt").write_text("Green tea should steep for two minutes at 80 degrees.\n", encoding="utf-8")
    assert fathom.ingest([docs]).ok
    golden = tmp_path / "golden.jsonl"
    rows = [
        {
            "id": "hours",
            "question": "When is the support desk open?",
            "answer_must_contain": ["9 AM", "5 PM"],
            "evidence": "open from 9 AM to 5 PM",
            "answerable": True,
        },
        {
            "id": "tea",
            "question": "How long should green tea steep?",
            "answer_must_contain": ["two minutes"],
            "evidence": "steep for two minutes",
            "answerable": True,
        },
        {
            "id": "mars",
            "question": "What is the orbital period of the moon Phobos around Mars?",
            "answer_must_contain": [],
            "evidence": "",
            "answerable": False,
        },
    ]
    golden.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = evaluate_qa(fathom, golden)
    assert (report.questions, report.answerable, report.unanswerable) == (3, 2, 1)
    assert report.evidence_hit_at_1 == 1.0 and report.evidence_hit_at_5 == 1.0
    assert report.answer_contains == 1.0
    assert report.abstention_recall == 1.0 and report.abstention_precision == 1.0
    by_id = {r.id: r for r in report.results}
    assert by_id["mars"].abstained and by_id["hours"].evidence_cited
    assert set(report.to_dict()) >= {"evidence_hit_at_1", "abstention_precision", "p50_ms"}
    # Answer-level scores: the cited sentences hold the gold evidence, no echo of the question.
    assert report.answer_cites_evidence == 1.0 and report.answer_correct == 1.0
    assert report.echo_rate == 0.0
    assert by_id["tea"].cites_evidence and by_id["tea"].correct and not by_id["tea"].echo
    assert {"answer_cites_evidence", "answer_correct", "echo_rate"} <= set(report.to_dict())


def test_answer_scores_count_a_question_echo_as_wrong_whatever_else_it_holds():
    question = "Design a production-grade RAG system for enterprise knowledge search"
    echo = "Design a production-grade RAG system for enterprise knowledge search."
    answer = f"{echo} [1] Use hybrid search and re-ranking. [2]"
    score = score_answer(
        question, answer, [echo, "Use hybrid search and re-ranking."], ["hybrid search"], "hybrid search"
    )
    assert score.echo and score.contains and score.cites_evidence
    assert not score.correct


def test_answer_scores_need_the_evidence_inside_a_cited_sentence():
    quote = "Rate Limiting: 1000 requests per minute per API key"
    score = score_answer(
        "What rate limit is enforced?", f"{quote} [1]", [quote], ["1000"], "1000 requests per minute"
    )
    assert score.cites_evidence and score.correct and not score.echo
    # The key phrase without the evidence sentence: contains, but does not cite the evidence.
    other = score_answer(
        "What rate limit is enforced?",
        "Up to 1000 users. [1]",
        ["Up to 1000 users."],
        ["1000"],
        "1000 requests per minute",
    )
    assert other.contains and not other.cites_evidence
    # An abstention scores nothing here (the abstention figures judge it).
    assert score_answer("q?", "I could not find it.", [], ["x"], "x", abstained=True).correct is False


def test_golden_file_errors_are_clear(tmp_path: Path):
    with pytest.raises(ConfigError, match="no golden QA file"):
        load_golden(tmp_path / "absent.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"answer": "no question here"}\n')
    with pytest.raises(ConfigError, match=":1 is not a golden question"):
        load_golden(bad)
