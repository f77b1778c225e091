"""What each retrieval lever gives on SciFact: a row per lever, train and test side by side.

    python -m bench.retrieval_levers [--beir ../shared/data/scifact] [--eval-home DIR]
                                     [--reranker cross-encoder:NAME]

Each "chain" row adds one lever to the chained row above it; "alternative" rows change
one thing relative to the default configuration (the row marked default) and are shown
for comparison. Choices were made on the train queries. Every row runs the same
`fathom eval retrieval` code (query embedding included in latency) against one
evaluation home, so only query-time settings and the lexical index layout change.
Writes bench/results/retrieval_levers.json and the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.machine import machine_info, replace_between_markers
from fathom.eval.retrieval import default_eval_home, evaluate_retrieval

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "retrieval_levers.json"
DOC = ROOT / "docs" / "benchmarks.md"
MARKER = "bench/retrieval_levers.py"

FP32 = {"query_precision": "float32"}
FOUNDATION = {**FP32, "lexical_context": False, "title_boost": 1.0, "heading_boost": 1.0, "fusion": "rrf"}
ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("foundation: BM25 title/heading/text fields, RRF k=60, float32 queries", "chain", FOUNDATION),
    ("+ title and headings in the BM25 text field", "chain", {**FP32, "fusion": "rrf"}),
    ("+ z-score fusion, dense spread floor 0.04", "chain", {**FP32, "fusion_rank_weight": 0.0}),
    ("+ rank term in z-score fusion (weight 1)", "chain", FP32),
    ("+ int8 query encoder (default)", "chain", {}),
    ("alternative: min-max score fusion", "alternative", {"fusion": "weighted"}),
    ("alternative: RRF k=60", "alternative", {"fusion": "rrf"}),
    ("alternative: plain z-score fusion (rank weight 0)", "alternative", {"fusion_rank_weight": 0.0}),
]


def run(beir: Path, eval_home: Path, reranker: str | None) -> dict[str, Any]:
    rows = list(ROWS)
    if reranker:
        rows.append((f"+ reranker {reranker}", "chain", {"reranker": reranker}))
    results: list[dict[str, Any]] = []
    for name, kind, overrides in rows:
        row: dict[str, Any] = {"lever": name, "kind": kind, "settings": overrides}
        for split in ("train", "test"):
            started = time.perf_counter()
            report = evaluate_retrieval(beir, split=split, home=eval_home, **overrides).to_dict()
            row[split] = {
                k: report[k] for k in ("ndcg@10", "recall@100", "mrr@10", "p50_ms", "p95_ms", "queries")
            }
            print(f"{name} [{split}] {row[split]} ({time.perf_counter() - started:.0f} s)", flush=True)
        results.append(row)
    return {
        "command": "python -m bench.retrieval_levers",
        "dataset": str(beir.name),
        "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d"),
        "rows": results,
    }


def table(data: dict[str, Any]) -> str:
    lines = [
        "| lever | train nDCG@10 | test nDCG@10 | test Recall@100 | test MRR@10 | test p50 / p95 ms |",
        "|---|---|---|---|---|---|",
    ]
    for row in data["rows"]:
        train, test = row["train"], row["test"]
        lines.append(
            f"| {row['lever']} | {train['ndcg@10']:.4f} | {test['ndcg@10']:.4f} | {test['recall@100']:.4f} "
            f"| {test['mrr@10']:.4f} | {test['p50_ms']:.1f} / {test['p95_ms']:.1f} |"
        )
    machine = data["machine"]
    lines.append("")
    lines.append(
        f"{data['dataset']}, {data['date']}, {machine['cpu']} ({machine['cores']} cores, "
        f"{machine['ram_gib']} GiB RAM, no GPU); latency is per query, query embedding included."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    parser.add_argument("--eval-home", type=Path, default=None)
    parser.add_argument(
        "--reranker", default=None, help="also measure a cross-encoder, e.g. cross-encoder:PATH"
    )
    parser.add_argument("--from-json", action="store_true", help="only regenerate the table from the JSON")
    args = parser.parse_args()
    if args.from_json:
        data = json.loads(RESULTS.read_text())
    else:
        if not args.beir.exists():
            raise SystemExit(f"BEIR folder not found at {args.beir}")
        data = run(args.beir, args.eval_home or default_eval_home(args.beir), args.reranker)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    rendered = table(data)
    replace_between_markers(DOC, MARKER, rendered)
    print(rendered)


if __name__ == "__main__":
    main()
