"""Abstention calibration: false abstentions against unanswerable abstention over ``min_support``.

    python bench/abstention.py [--homes DIR] [--low 0.30] [--high 0.70] [--step 0.01]

Two golden sets, each against its own home (ingested once and kept under ``--homes``):

* ``train``: ``data/calibration/seeds_docs.jsonl``, the calibration set, over the seeds corpus
  and four of the repository's guides (``CALIBRATION_DOCS``);
* ``held-out``: ``seeds-qa/dev.jsonl`` over the seeds corpus alone (the home
  ``tests/test_seeds_quality.py`` builds).

Every question is asked once with ``min_support = 0``, so the answerer never abstains for lack
of support, and the best cited sentence's support is recorded with the answer-level scores of
:func:`fathom.eval.qa.score_answer`. At a threshold ``t`` the answerer abstains exactly on the
questions whose best support is below ``t`` (or that had no candidate sentence), so one pass
gives the whole curve. (An answer's extra sentences must also reach ``t``; the curve scores the
answer given at ``t = 0``, so its "correct" column can differ from a run at ``t`` by an answer
whose only key phrase is in a dropped extra sentence; the abstention columns are exact.)

The recommended threshold is the lowest false-abstention rate on ``train`` that keeps every
unanswerable ``train`` question abstained, placed midway between the highest unanswerable
support and the next answerable support above it. Writes ``bench/results/abstention.json`` and
prints a Markdown table, which also goes into docs/evaluation.md between its bench markers.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fathom import Fathom  # noqa: E402
from fathom.eval.qa import load_golden, score_answer  # noqa: E402
from fathom.status import home_documents  # noqa: E402

SHARED = ROOT.parent / "shared"
SEEDS = SHARED / "corpus" / "seeds"
DEV = SHARED / "data" / "seeds-qa" / "dev.jsonl"
CALIBRATION = ROOT / "data" / "calibration" / "seeds_docs.jsonl"
CALIBRATION_DOCS = tuple(
    ROOT / "docs" / name for name in ("overview.md", "usage.md", "ingest.md", "how-it-works.md")
)
RESULTS = ROOT / "bench" / "results" / "abstention.json"
DOC_PAGE = ROOT / "docs" / "evaluation.md"
START, END = "<!-- bench/abstention.py:start -->", "<!-- bench/abstention.py:end -->"


def _home(path: Path, sources: list[Path]) -> Fathom:
    fathom = Fathom(home=path, min_support=0.0)
    if not home_documents(path):
        report = fathom.ingest(sources)
        if not report.ok:
            raise SystemExit(f"ingest into {path} failed: {report}")
    return fathom


def measure(fathom: Fathom, golden_path: Path) -> list[dict[str, Any]]:
    """One row per question: best support (None: no candidate sentence) and answer-level scores."""
    rows: list[dict[str, Any]] = []
    for item in load_golden(golden_path):
        answer = fathom.ask(item.question)
        best = None if answer.abstained else max((s.support for s in answer.sentences), default=None)
        quotes = [c.quote for c in answer.citations]
        score = score_answer(
            item.question,
            answer.answer,
            quotes,
            item.must_contain,
            item.evidence,
            abstained=answer.abstained,
            answerable=item.answerable,
        )
        hits = fathom.search(item.question, k=5)
        found = bool(item.evidence) and (score.cites_evidence or any(item.evidence in h.text for h in hits))
        rows.append(
            {
                "id": item.id,
                "answerable": item.answerable,
                "best_support": None if best is None else round(best, 4),
                "correct": score.correct,
                "cites_evidence": score.cites_evidence,
                "echo": score.echo,
                "evidence_found": found,
                "answer": answer.answer[:300],
            }
        )
    return rows


def _abstains(row: dict[str, Any], threshold: float) -> bool:
    return row["best_support"] is None or row["best_support"] < threshold


def at_threshold(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    found = [r for r in answerable if r["evidence_found"]]
    false_abstentions = [r["id"] for r in answerable if _abstains(r, threshold)]
    answered_unanswerable = [r["id"] for r in unanswerable if not _abstains(r, threshold)]
    return {
        "threshold": round(threshold, 3),
        "false_abstention": len(false_abstentions) / len(answerable) if answerable else None,
        "false_abstention_evidence_found": (
            sum(_abstains(r, threshold) for r in found) / len(found) if found else None
        ),
        "unanswerable_abstention": (
            1 - len(answered_unanswerable) / len(unanswerable) if unanswerable else None
        ),
        "answer_correct": (
            sum(r["correct"] and not _abstains(r, threshold) for r in answerable) / len(answerable)
            if answerable
            else None
        ),
        "false_abstentions": false_abstentions,
        "answered_unanswerable": answered_unanswerable,
    }


def recommend(rows: list[dict[str, Any]]) -> float | None:
    """Midway between the highest unanswerable support and the next answerable one above it."""
    unanswerable = [r["best_support"] for r in rows if not r["answerable"] and r["best_support"] is not None]
    ceiling = max(unanswerable, default=0.0)
    above = sorted(r["best_support"] for r in rows if r["answerable"] and r["best_support"] is not None)
    above = [s for s in above if s > ceiling]
    if not above:
        return None
    return round((float(ceiling) + float(above[0])) / 2, 3)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def table(curves: dict[str, list[dict[str, Any]]], marks: set[float]) -> str:
    names = list(curves)
    head = "| min_support | " + " | ".join(
        f"{n} false abstention | {n} unanswerable abstained | {n} answer correct" for n in names
    )
    lines = [head + " |", "|---" * (1 + 3 * len(names)) + "|"]
    for i, point in enumerate(curves[names[0]]):
        t = point["threshold"]
        if t not in marks and round(t * 100) % 5:
            continue  # the table shows every 0.05 and the marked thresholds; the JSON has all
        cells = [f"**{t:g}**" if t in marks else f"{t:.2f}"]
        for n in names:
            p = curves[n][i]
            cells += [
                _pct(p["false_abstention"]),
                _pct(p["unanswerable_abstention"]),
                _pct(p["answer_correct"]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--homes", type=Path, default=Path.home() / ".cache" / "fathom-bench" / "abstention")
    parser.add_argument("--low", type=float, default=0.30)
    parser.add_argument("--high", type=float, default=0.70)
    parser.add_argument("--step", type=float, default=0.01)
    parser.add_argument(
        "--current", type=float, default=None, help="threshold to mark (default: the setting's)"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/evaluation.md")
    parser.add_argument(
        "--from-results", action="store_true", help="rewrite the table from the last results, asking nothing"
    )
    args = parser.parse_args(argv)

    from fathom.config import Settings

    current = args.current if args.current is not None else Settings.model_fields["min_support"].default
    sets = {
        "train": (CALIBRATION, args.homes / "seeds-docs", [SEEDS, *CALIBRATION_DOCS]),
        "held-out": (DEV, args.homes / "seeds", [SEEDS]),
    }
    rows: dict[str, list[dict[str, Any]]] = {}
    if args.from_results:
        rows = json.loads(RESULTS.read_text())["rows"]
    for name, (golden, home, sources) in sets.items():
        if name in rows:
            continue
        fathom = _home(home, sources)
        try:
            rows[name] = measure(fathom, golden)
        finally:
            fathom.close()
    steps = int(round((args.high - args.low) / args.step)) + 1
    grid = [round(args.low + i * args.step, 3) for i in range(steps)]
    recommended = recommend(rows["train"])
    points = sorted({*grid, float(current), *([recommended] if recommended is not None else [])})
    curves = {name: [at_threshold(r, t) for t in points] for name, r in rows.items()}
    marks = {float(current), *([recommended] if recommended is not None else [])}
    summary = {
        name: {
            "current": at_threshold(r, float(current)),
            "recommended": at_threshold(r, recommended) if recommended is not None else None,
        }
        for name, r in rows.items()
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "current_min_support": current,
                "recommended_min_support": recommended,
                "summary": summary,
                "curves": curves,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    text = table(curves, marks)
    note = (
        f"\nCurrent `min_support` {current}; every train unanswerable question abstains from "
        f"{recommended}. Bold rows are those two thresholds."
    )
    print(text + "\n" + note)
    if not args.no_docs and DOC_PAGE.exists():
        page = DOC_PAGE.read_text()
        if START in page and END in page:
            before, rest = page.split(START, 1)
            _, after = rest.split(END, 1)
            DOC_PAGE.write_text(f"{before}{START}\n{text}\n{note}\n{END}{after}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
