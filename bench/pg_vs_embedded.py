"""The postgres and the embedded backend side by side on SciFact, queries interleaved.

    python -m bench.pg_vs_embedded --database-url postgresql+psycopg://postgres@127.0.0.1:PORT/fathom
        --pg-home /tmp/fathom-eval-pg --embedded-home /tmp/fathom-eval-emb [--split test]

Both homes are `fathom eval retrieval` homes on the same PostgreSQL store (the same chunks and
vectors): one with ``index_backend = "postgres"``, one with ``"embedded"``. Each query runs
through :meth:`fathom.Fathom.search_traced` (k=100, query embedding included, each backend with
its own copy of the model so neither is served from the other's query cache) on one backend and
then the other, alternating which goes first, so both see the same load on a shared machine.
Writes bench/results/pg_vs_embedded.json and the table in docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.machine import machine_info, replace_between_markers
from fathom import Fathom
from fathom.config import DEFAULT_EMBEDDER
from fathom.domain import Principal
from fathom.embed.base import create_embedder
from fathom.eval.beir import load_beir
from fathom.eval.metrics import ndcg_at_k, percentile, recall_at_k
from fathom.eval.retrieval import ranked_documents
from fathom.index.backend import SearchRequest
from fathom.index.vocabulary import filter_for

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "pg_vs_embedded.json"
DOC = ROOT / "docs" / "scale.md"
MARKER = "bench/pg_vs_embedded.py"
BACKENDS = ("postgres", "embedded")


def run(database_url: str, homes: dict[str, Path], beir: Path, split: str) -> dict[str, Any]:
    dataset = load_beir(beir, split)
    opened = {
        name: Fathom(
            home=homes[name],
            embedder=create_embedder(DEFAULT_EMBEDDER, query_precision="int8"),
            database_url=database_url,
            index_backend=name,
        )
        for name in BACKENDS
    }
    latencies: dict[str, list[float]] = {name: [] for name in BACKENDS}
    backend_only: dict[str, list[float]] = {name: [] for name in BACKENDS}
    where = filter_for(Principal(tenant=opened["postgres"].settings.tenant, admin=True))
    stages: dict[str, dict[str, list[float]]] = {name: {} for name in BACKENDS}
    ndcg = dict.fromkeys(BACKENDS, 0.0)
    recall = dict.fromkeys(BACKENDS, 0.0)
    try:
        for fathom in opened.values():
            for number in range(5):
                fathom.search_traced(f"warm up query number {number}", k=100)
        for number, (query_id, query) in enumerate(dataset.queries.items()):
            order = BACKENDS if number % 2 == 0 else BACKENDS[::-1]
            for name in order:
                fathom = opened[name]
                fathom.stage_observer = lambda stage, seconds, name=name: (
                    stages[name].setdefault(stage, []).append(seconds * 1000)
                )
                started = time.perf_counter()
                hits = fathom.search_traced(query, k=100).hits
                latencies[name].append((time.perf_counter() - started) * 1000)
                ranking = ranked_documents(hits)
                ndcg[name] += ndcg_at_k(ranking, dataset.qrels[query_id], 10)
                recall[name] += recall_at_k(ranking, dataset.qrels[query_id], 100)
            # The backends alone: the same query text and vector, no embedding, no store reads.
            vector = opened["postgres"].embedder.embed_query(query)
            request = SearchRequest(text=query, vector=vector, where=where, depth=200)
            for name in order:
                started = time.perf_counter()
                opened[name].backend.search(request)
                backend_only[name].append((time.perf_counter() - started) * 1000)
    finally:
        for fathom in opened.values():
            fathom.close()
    count = len(dataset.queries)
    rows = []
    for name in BACKENDS:
        row = {
            "backend": name,
            "ndcg@10": round(ndcg[name] / count, 4),
            "recall@100": round(recall[name] / count, 4),
            "p50_ms": round(percentile(latencies[name], 50), 2),
            "p95_ms": round(percentile(latencies[name], 95), 2),
            "backend_search_p50_ms": round(percentile(backend_only[name], 50), 2),
            "backend_search_p95_ms": round(percentile(backend_only[name], 95), 2),
            "stages_p50_ms": {
                stage: round(percentile(values, 50), 2) for stage, values in sorted(stages[name].items())
            },
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return {
        "command": "python -m bench.pg_vs_embedded --database-url URL --pg-home DIR --embedded-home DIR",
        "dataset": beir.name,
        "split": split,
        "queries": count,
        "machine": machine_info(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": rows,
    }


def table(result: dict[str, Any]) -> str:
    """The Markdown table of a result, for docs/scale.md."""
    lines = [
        "| backend | nDCG@10 | Recall@100 | search p50 / p95 | backend search p50 / p95 |"
        " lexical p50 | dense p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        stages = row["stages_p50_ms"]
        lines.append(
            f"| {row['backend']} | {row['ndcg@10']:.4f} | {row['recall@100']:.4f} |"
            f" {row['p50_ms']:.1f} / {row['p95_ms']:.1f} ms |"
            f" {row['backend_search_p50_ms']:.1f} / {row['backend_search_p95_ms']:.1f} ms |"
            f" {stages.get('lexical', 0):.1f} ms |"
            f" {stages.get('dense', 0):.1f} ms |"
        )
    machine = result["machine"]
    lines.append("")
    lines.append(
        f"SciFact {result['split']}, {result['queries']} queries, k=100. Search: `Fathom.search`, query "
        "embedding and store reads included; backend search: the backend alone (lexical + dense, "
        "depth 200, the same query vector). Queries interleaved between the backends; "
        f"{machine['cores']} cores ({machine['cpu']}), "
        f"shared with other work, {result['measured_at']}: compare rows, not absolutes."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pg-home", type=Path, required=True)
    parser.add_argument("--embedded-home", type=Path, required=True)
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    homes = {"postgres": args.pg_home, "embedded": args.embedded_home}
    result = run(args.database_url, homes, args.beir, args.split)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    replace_between_markers(DOC, MARKER, table(result))
    print(f"wrote {args.out} and the table in {DOC}")


if __name__ == "__main__":
    main()
