"""Agent mode against single-shot answers on multi-hop questions over the seeds corpus.

    python -m bench.agent_multihop [--qa data/qa/seeds-multihop.jsonl] [--home DIR] [--limit N]

Each question of ``data/qa/seeds-multihop.jsonl`` needs two passages from different places
(two companies' sections, or two parts of one section). Rows:

- ``extractive, single``: no LLM (the default answerer), one retrieval;
- ``scripted, single`` / ``scripted, agent``: the scripted tools-speaking server
  (:class:`fathom.llm.testing_agent.ScriptedResearcher`, real HTTP and SSE on 127.0.0.1): one
  fixed policy for picking answer lines in both modes, so the rows differ only in what each
  mode retrieved;
- ``env, single`` / ``env, agent``: the model that ``FATHOM_LLM`` and ``FATHOM_LLM_BASE_URL``
  configure, when they do (any instruction-following model with the tools protocol);
  otherwise the report says that none was available.

Figures per row: evidence recall (share of the gold evidence strings present in the passages
the answer was written from), cited evidence recall (present in the citations' quotes),
answer correctness (every expected string in the verified answer), mean agent steps, mean
LLM tokens and mean seconds per question. Writes bench/results/agent_multihop.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.machine import machine_info
from fathom import Fathom
from fathom.config import load_settings
from fathom.domain import Answer
from fathom.embed import Embedder, create_embedder
from fathom.llm.testing import ScriptedLLMServer
from fathom.llm.testing_agent import ScriptedResearcher

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SEEDS = ROOT.parent / "shared" / "corpus" / "seeds"


def score(row: dict[str, Any], answer: Answer, seconds: float) -> dict[str, Any]:
    """One question's figures."""
    read = "\n".join(hit.text for hit in answer.hits)
    quotes = "\n".join(c.quote for c in answer.citations)
    evidence = row["evidence"]
    return {
        "id": row["id"],
        "kind": row["kind"],
        "evidence_recall": sum(e in read for e in evidence) / len(evidence),
        "cited_evidence_recall": sum(e in quotes for e in evidence) / len(evidence),
        "correct": all(m in answer.answer for m in row["answer_must_contain"]),
        "abstained": answer.abstained,
        "steps": sum(1 for s in answer.agent.steps if s.tool not in ("answer", "limit"))
        if answer.agent
        else 0,
        "fallback": answer.agent.fallback if answer.agent else None,
        "tokens": answer.usage.total_tokens,
        "seconds": round(seconds, 3),
        "answer": answer.answer,
    }


def run(fathom: Fathom, rows: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    """Every question through ``fathom`` in ``mode``; the per-question results and their means."""
    results = []
    for row in rows:
        started = time.perf_counter()
        answer = fathom.ask(row["question"], mode=mode)  # type: ignore[arg-type]
        results.append(score(row, answer, time.perf_counter() - started))
    count = len(results)
    return {
        "questions": count,
        "evidence_recall": round(sum(r["evidence_recall"] for r in results) / count, 4),
        "cited_evidence_recall": round(sum(r["cited_evidence_recall"] for r in results) / count, 4),
        "answer_correctness": round(sum(r["correct"] for r in results) / count, 4),
        "mean_steps": round(statistics.mean(r["steps"] for r in results), 2),
        "fallbacks": sum(1 for r in results if r["fallback"]),
        "mean_tokens": round(statistics.mean(r["tokens"] for r in results), 1),
        "mean_seconds": round(statistics.mean(r["seconds"] for r in results), 3),
        "per_question": results,
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        "| answerer | mode | evidence recall | cited evidence recall | answer correct | steps | "
        "fallbacks | tokens | s/question |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run_ in report["runs"]:
        lines.append(
            f"| {run_['answerer']} | {run_['mode']} | {run_['evidence_recall']:.1%} | "
            f"{run_['cited_evidence_recall']:.1%} | {run_['answer_correctness']:.1%} | "
            f"{run_['mean_steps']} | {run_['fallbacks']} | {run_['mean_tokens']:.0f} | "
            f"{run_['mean_seconds']:.2f} |"
        )
    lines += ["", report["note"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qa", type=Path, default=ROOT / "data" / "qa" / "seeds-multihop.jsonl")
    parser.add_argument("--home", type=Path, default=Path.home() / ".cache" / "fathom" / "bench" / "seeds")
    parser.add_argument("--limit", type=int, default=0, help="Only the first N questions.")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.qa.read_text().splitlines() if line.strip()]
    if args.limit:
        rows = rows[: args.limit]
    embedder: Embedder = create_embedder(load_settings(args.home).embedder)
    with Fathom(home=args.home, embedder=embedder, llm="extractive") as fathom:
        report_ingest = fathom.ingest([SEEDS])
        assert report_ingest.ok, report_ingest.failed
    runs: list[dict[str, Any]] = []

    def record(answerer: str, mode: str, **settings: Any) -> None:
        with Fathom(home=args.home, embedder=embedder, answer_cache_size=0, **settings) as fathom:
            result = run(fathom, rows, mode)
        runs.append({"answerer": answerer, "mode": mode, **result})
        print(answerer, mode, {k: v for k, v in result.items() if k != "per_question"}, flush=True)  # noqa: T201

    record("extractive", "single", llm="extractive")
    script = ScriptedResearcher()
    with ScriptedLLMServer(script) as server:
        scripted = {"llm": "openai:scripted-researcher", "llm_base_url": server.url, "llm_retries": 0}
        record("scripted", "single", **scripted)
        record("scripted", "agent", **scripted)
    configured = load_settings(args.home)
    if configured.llm != "extractive" and "FATHOM_LLM_BASE_URL" in os.environ:
        record(f"env {configured.llm}", "single")
        record(f"env {configured.llm}", "agent")
        note = f"Instruction-following model: {configured.llm} at FATHOM_LLM_BASE_URL."
    else:
        note = (
            "No instruction-following model was available (FATHOM_LLM / FATHOM_LLM_BASE_URL not set): "
            "the LLM rows are the scripted tools-speaking server, a fixed policy, not a model."
        )
    report = {"machine": machine_info(), "qa": str(args.qa.relative_to(ROOT)), "note": note, "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "agent_multihop.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (RESULTS / "agent_multihop.md").write_text(table(report) + "\n")
    print(table(report))  # noqa: T201


if __name__ == "__main__":
    main()
