"""`fathom eval qa` on a golden set over documents the test writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fathom import Fathom
from fathom.errors import ConfigError
from fathom.eval.qa import evaluate_qa, load_golden

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


def test_golden_file_errors_are_clear(tmp_path: Path):
    with pytest.raises(ConfigError, match="no golden QA file"):
        load_golden(tmp_path / "absent.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"answer": "no question here"}\n')
    with pytest.raises(ConfigError, match=":1 is not a golden question"):
        load_golden(bad)
