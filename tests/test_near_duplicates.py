"""Near-identical company manuals: duplicates collapse in results, and a question that names
one company cites that company's text, never a look-alike manual of another company."""

from __future__ import annotations

import json
import shutil
from itertools import combinations
from pathlib import Path

import pytest

from fathom import Fathom
from fathom.ingest.fingerprint import fingerprint, similarity
from tests.conftest import require_shared

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED_MANUALS = "002_67e31efd3a0362b9.txt"
COMPANIES = ["TechNova AI", "CloudNova", "TechCore", "GameForge AI", "LexAI Solutions", "SkyAI Cloud"]
# Look-alike copies of the TechNova AI manual: same template, other name, contacts and hours.
VARIANTS = {
    "Zephyr AI": ("zephyrai", "+91 9000000001", "Mon-Fri 7 AM – 3 PM IST"),
    "Orbital AI": ("orbitalai", "+91 9000000002", "Tue-Sat 10 AM – 6 PM IST"),
    "Quokka AI": ("quokkaai", "+91 9000000003", "Mon-Sun 6 AM – 11 PM IST"),
    "Meridian AI": ("meridianai", "+91 9000000004", "Mon-Thu 8 AM – 4 PM IST"),
}


def _technova_manual(seeds: Path) -> str:
    lines = (seeds / SEED_MANUALS).read_text(encoding="utf-8").split("\n")
    start = lines.index("TechNova AI SaaS Platform - Knowledge Base & Technical Manual")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("CloudNova - "))
    return "\n".join(lines[start:end]).strip()


@pytest.fixture(scope="module")
def manuals(tmp_path_factory: pytest.TempPathFactory, embedder) -> Fathom:
    seeds = require_shared("corpus", "seeds")
    root = tmp_path_factory.mktemp("manuals")
    shutil.copytree(seeds, root / "seeds")
    template = _technova_manual(seeds)
    for company, (domain, phone, hours) in VARIANTS.items():
        text = (
            template.replace("TechNova AI", company)
            .replace("technovaai", domain)
            .replace("+91 9876543233", phone)
            .replace("Mon-Sat 9 AM – 8 PM IST", hours)
        )
        (root / f"{domain}.txt").write_text(text, encoding="utf-8")
    fathom = Fathom(home=root / "home", embedder=embedder)
    report = fathom.ingest([root / "seeds", *sorted(root.glob("*.txt"))])
    assert report.ok
    warned = [o for o in report.outcomes if any("near-duplicate of" in w for w in o.warnings)]
    assert len(warned) == len(VARIANTS) - 1  # every copy after the first is linked to one before it
    return fathom


def test_copies_keep_their_provenance_and_collapse_in_results(manuals: Fathom):
    assert manuals.status().documents == 4 + len(VARIANTS)
    hits = manuals.search("text analysis sentiment analysis keyword extraction summarization", k=5)
    marks = [fingerprint(h.text) for h in hits]
    assert all(similarity(a, b) < 0.8 for a, b in combinations(marks, 2))
    collapsed = {source for h in hits for source in (h.source, *h.also_in)}
    assert sum(1 for s in collapsed if Path(s).stem in {d for d, _p, _h in VARIANTS.values()}) >= 3


@pytest.mark.parametrize("company", list(VARIANTS))
def test_questions_naming_a_look_alike_company_cite_its_own_manual(manuals: Fathom, company: str):
    domain, phone, hours = VARIANTS[company]
    for question, expected in [
        (f"What is the technical support email for {company}?", f"support@{domain}.com"),
        (f"What are the business hours of {company}?", hours),
    ]:
        answer = manuals.ask(question)
        assert not answer.abstained, question
        assert any(expected in c.quote for c in answer.citations), (question, answer.answer)
        assert {Path(c.source).stem for c in answer.citations} == {domain}, question


def test_seed_questions_naming_a_company_cite_that_companys_manual(manuals: Fathom):
    rows = [
        json.loads(line) for line in require_shared("data", "seeds-qa", "dev.jsonl").read_text().splitlines()
    ]
    checked = 0
    for row in rows:
        named = [c for c in COMPANIES if c in row["question"]]
        if row["source"] != SEED_MANUALS or len(named) != 1:
            continue
        answer = manuals.ask(row["question"])
        assert not answer.abstained, row["id"]
        manual_citations = [c for c in answer.citations if c.source.endswith(SEED_MANUALS)]
        assert manual_citations, row["id"]
        for citation in manual_citations:  # general articles may add support; other companies may not
            assert citation.heading_path and named[0] in citation.heading_path[0], (row["id"], citation)
        checked += 1
    assert checked >= 6
