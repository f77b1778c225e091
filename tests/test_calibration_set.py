"""The abstention calibration set (data/calibration/seeds_docs.jsonl) and fathom's figures on it.

The set was written independently of ``seeds-qa/dev.jsonl``, over the seeds corpus and four of
the repository's guides. The figures asserted at the end are the measured ones with the default
``min_support`` (docs/evaluation.md, "Abstention calibration"), with a margin of one question:
they fall short of the issue 18 goal (at most 5 percent false abstention with every unanswerable
question abstained), which no threshold alone reaches on this set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fathom import Fathom
from fathom.eval.qa import evaluate_qa, load_golden
from tests.conftest import require_shared

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT / "data" / "calibration" / "seeds_docs.jsonl"
GUIDES = [ROOT / "docs" / name for name in ("overview.md", "usage.md", "ingest.md", "how-it-works.md")]


def _rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CALIBRATION.read_text(encoding="utf-8").splitlines() if line.strip()]


def _source_text(source: str) -> str:
    if source.startswith("seeds/"):
        return require_shared("corpus", "seeds", source.removeprefix("seeds/")).read_text(encoding="utf-8")
    return (ROOT / source).read_text(encoding="utf-8")


def test_the_set_is_large_varied_and_its_evidence_is_verbatim() -> None:
    rows = _rows()
    assert len(load_golden(CALIBRATION)) == len(rows) >= 60
    unanswerable = [r for r in rows if not r["answerable"]]
    assert len(unanswerable) >= 15
    assert all(not r["evidence"] and not r["answer_must_contain"] for r in unanswerable)
    kinds = {r["kind"] for r in rows if r["answerable"]}
    assert {"paraphrase", "numeric", "list", "two-sentence", "fact"} <= kinds
    assert {r["source"] for r in rows if r["answerable"]} >= {"docs/overview.md", "docs/ingest.md"}
    for row in rows:
        if row["answerable"]:
            text = _source_text(row["source"])
            assert row["evidence"] in text, row["id"]
            assert all(key in text for key in row["answer_must_contain"]), row["id"]
    # Written apart from the dev set: no question is shared.
    dev = {
        json.loads(line)["question"].casefold()
        for line in require_shared("data", "seeds-qa", "dev.jsonl").read_text(encoding="utf-8").splitlines()
    }
    assert not dev & {r["question"].casefold() for r in rows}


@pytest.mark.integration
@pytest.mark.slow
def test_abstention_and_answers_on_the_calibration_set(tmp_path: Path, embedder) -> None:
    seeds = require_shared("corpus", "seeds")
    fathom = Fathom(home=tmp_path, embedder=embedder)
    try:
        assert fathom.ingest([seeds, *GUIDES]).ok
        report = evaluate_qa(fathom, CALIBRATION)
    finally:
        fathom.close()
    answerable = [r for r in report.results if r.answerable]
    unanswerable = [r for r in report.results if not r.answerable]
    false_abstentions = [r.id for r in answerable if r.abstained]
    answered = [r.id for r in unanswerable if not r.abstained]
    # Measured: 4 of 59 answerable abstained (6.8%), 13 of 18 unanswerable abstained (72.2%),
    # 48 of 59 answered correctly (81.4%), no question echoed.
    assert len(false_abstentions) <= 5, false_abstentions
    assert len(unanswerable) - len(answered) >= 12, answered
    assert sum(r.correct for r in answerable) >= 47
    assert report.echo_rate == 0.0
