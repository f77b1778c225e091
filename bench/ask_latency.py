"""In-process ``ask`` latency and answer quality on the seeds corpus, before and after a change.

    python bench/ask_latency.py [--before-src /work/main/src] [--rounds 2] [--no-docs] [--quiet-machine]

Each variant (``before``: the source tree given by ``--before-src``, e.g. main's; ``after``:
this tree) runs in a child process with its own ``PYTHONPATH`` and its own home (ingested once
and kept under ``--homes``). A child asks every question of ``seeds-qa/dev.jsonl`` twice:

* *cold*: the answerer's sentence vectors are not cached yet (the first time a question's
  chunks are read: what a new question costs);
* *warm*: the same questions again (the sentence cache holds their sentences).

and times ``Fathom.search`` on the same questions (the part of ``ask`` that is not the
answerer). Rounds alternate the variants (before, after, before, after, ...) so the load of a
shared machine falls on both alike; the figures are the median over rounds. Every answer is
scored here with this tree's :func:`fathom.eval.qa.score_answer` (answer-level scores, the
same for both variants). Writes bench/results/ask_latency.json and prints a Markdown table,
which also goes into docs/evaluation.md between its bench markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEEDS = SHARED / "corpus" / "seeds"
DEV = SHARED / "data" / "seeds-qa" / "dev.jsonl"
RESULTS = ROOT / "bench" / "results" / "ask_latency.json"
DOC_PAGE = ROOT / "docs" / "evaluation.md"
START, END = "<!-- bench/ask_latency.py:start -->", "<!-- bench/ask_latency.py:end -->"


def _child(home: Path) -> dict[str, Any]:
    """One variant, in this process: ingest (once), then time and record every dev question."""
    from fathom import Fathom

    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    fathom = Fathom(home=home)
    marker = home / ".seeded"
    ingest_s = None
    if not marker.exists():
        started = time.perf_counter()
        if not fathom.ingest([SEEDS]).ok:
            raise SystemExit("ingest failed")
        ingest_s = time.perf_counter() - started
        marker.write_text("1")
    fathom.search("warm up the model")
    fathom.ask("warm up the answerer on an unrelated question about nothing")
    passes: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    answers: list[dict[str, Any]] = []
    for name in ("cold", "warm"):
        wall, used = [], []
        for row in rows:
            started, cpu_started = time.perf_counter(), time.process_time()
            answer = fathom.ask(row["question"])
            wall.append((time.perf_counter() - started) * 1000)
            used.append((time.process_time() - cpu_started) * 1000)
            if name == "cold":
                hits = fathom.search(row["question"], k=5)
                evidence = row.get("evidence") or ""
                rank = next((i for i, h in enumerate(hits, 1) if evidence and evidence in h.text), None)
                answers.append(
                    {
                        "id": row["id"],
                        "answer": answer.answer,
                        "quotes": [c.quote for c in answer.citations],
                        "abstained": answer.abstained,
                        "evidence_rank": rank,
                    }
                )
        passes[name], cpu[name] = wall, used
    search_ms = []
    for row in rows:
        started = time.perf_counter()
        fathom.search(row["question"], k=6)
        search_ms.append((time.perf_counter() - started) * 1000)
    return {
        "wall_ms": passes,
        "cpu_ms": cpu,
        "search_ms": search_ms,
        "answers": answers,
        "ingest_s": ingest_s,
    }


def _run_child(src: Path, home: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(home)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child for {src} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _quality(answers: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, float]:
    from fathom.eval.qa import score_answer

    answerable = [(a, r) for a, r in zip(answers, rows, strict=True) if r["answerable"]]
    unanswerable = [a for a, r in zip(answers, rows, strict=True) if not r["answerable"]]
    answered = [(a, r) for a, r in zip(answers, rows, strict=True) if not a["abstained"]]
    scores = {
        a["id"]: score_answer(
            r["question"],
            a["answer"],
            a["quotes"],
            r.get("answer_must_contain", []),
            r.get("evidence") or "",
            abstained=a["abstained"],
            answerable=r["answerable"],
        )
        for a, r in zip(answers, rows, strict=True)
    }
    n = len(answerable)
    return {
        "evidence_hit_at_5": round(sum(a["evidence_rank"] is not None for a, _ in answerable) / n, 4),
        "answer_contains": round(sum(scores[a["id"]].contains for a, _ in answerable) / n, 4),
        "answer_cites_evidence": round(sum(scores[a["id"]].cites_evidence for a, _ in answerable) / n, 4),
        "answer_correct": round(sum(scores[a["id"]].correct for a, _ in answerable) / n, 4),
        "echo_rate": round(sum(scores[a["id"]].echo for a, _ in answered) / max(1, len(answered)), 4),
        "abstention_recall": round(sum(a["abstained"] for a in unanswerable) / max(1, len(unanswerable)), 4),
    }


def _table(variants: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| variant | ask p50 cold | ask p95 cold | ask p50 warm | ask CPU p50 cold | search p50 "
        "| answer correct | answer contains | cites evidence | echoes | evidence hit@5 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in variants.items():
        q = v["quality"]
        lines.append(
            f"| {name} | {v['ask_p50_cold_ms']:.0f} ms | {v['ask_p95_cold_ms']:.0f} ms "
            f"| {v['ask_p50_warm_ms']:.0f} ms | {v['ask_cpu_p50_cold_ms']:.0f} ms "
            f"| {v['search_p50_ms']:.0f} ms "
            f"| {q['answer_correct']:.1%} | {q['answer_contains']:.1%} | {q['answer_cites_evidence']:.1%} "
            f"| {q['echo_rate']:.1%} | {q['evidence_hit_at_5']:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--before-src", type=Path, default=Path("/work/main/src"))
    parser.add_argument("--homes", type=Path, default=Path("/tmp/fathom-ask-latency"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-docs", action="store_true", help="Do not update docs/evaluation.md.")
    parser.add_argument(
        "--quiet-machine",
        action="store_true",
        help="Say the figures come from a machine running nothing else (your word: it is not checked).",
    )
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_child(args.child)))
        return
    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    sources = {"before": args.before_src.resolve(), "after": ROOT / "src"}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sources}
    for _ in range(args.rounds):
        for name, src in sources.items():
            # Chunking may differ between the variants: each keeps a home of its own.
            runs[name].append(_run_child(src, args.homes / name))
    variants: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():

        def median(
            key: str, pass_name: str | None, q: float, results: list[dict[str, Any]] = results
        ) -> float:
            values = [_percentile(r[key][pass_name] if pass_name else r[key], q) for r in results]
            return round(statistics.median(values), 1)

        variants[name] = {
            "src": str(sources[name]),
            "ask_p50_cold_ms": median("wall_ms", "cold", 50),
            "ask_p95_cold_ms": median("wall_ms", "cold", 95),
            "ask_p50_warm_ms": median("wall_ms", "warm", 50),
            "ask_cpu_p50_cold_ms": median("cpu_ms", "cold", 50),
            "search_p50_ms": median("search_ms", None, 50),
            "ingest_s": next((r["ingest_s"] for r in results if r["ingest_s"] is not None), None),
            "quality": _quality(results[-1]["answers"], rows),
            "answers": {a["id"]: a["answer"][:300] for a in results[-1]["answers"]},
        }
    load = os.getloadavg()[0]
    setting = (
        "nothing else running; the load is the bench's own processes"
        if args.quiet_machine
        else "shared with other work, under load: compare the variants with each other"
    )
    report = {
        "corpus": "seeds",
        "questions": len(rows),
        "rounds": args.rounds,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1m_at_end": round(load, 1),
            "note": setting,
        },
        "variants": variants,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    table = _table(variants)
    print(table)
    print(f"\n{os.cpu_count()} CPUs, load average {load:.1f} at the end ({setting}).")
    if not args.no_docs and DOC_PAGE.exists():
        page = DOC_PAGE.read_text(encoding="utf-8")
        if START in page and END in page:
            head, rest = page.split(START, 1)
            _, tail = rest.split(END, 1)
            note = f"\n\n{os.cpu_count()} CPUs, load average {load:.1f} at the end ({setting}).\n"
            DOC_PAGE.write_text(f"{head}{START}\n{table}{note}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
