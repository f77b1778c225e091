"""Foundation figures: ingest throughput and in-process search/ask latency on the seed documents.

    python bench/foundation.py [--seeds ../shared/corpus/seeds] [--repeats 5]

Writes bench/results/foundation.json and prints a Markdown table. Numbers are for
this machine; the JSON records cores and RAM next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from fathom import Fathom
from fathom.config import DEFAULT_EMBEDDER
from fathom.domain import contextual_text
from fathom.embed import create_embedder
from fathom.eval.metrics import percentile
from fathom.ingest.parsers import parse_bytes
from fathom.ingest.pipeline import iter_files

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=Path, default=ROOT.parent / "shared" / "corpus" / "seeds")
    parser.add_argument("--qa", type=Path, default=ROOT.parent / "shared" / "data" / "seeds-qa" / "dev.jsonl")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not args.seeds.exists():
        raise SystemExit(f"seed documents not found at {args.seeds}")

    embedder = create_embedder(DEFAULT_EMBEDDER)
    embedder.embed_documents(["warm up"])
    with tempfile.TemporaryDirectory() as home:
        fathom = Fathom(home=home, embedder=embedder)
        started = time.perf_counter()
        report = fathom.ingest([args.seeds])
        ingest_s = time.perf_counter() - started
        chunks = fathom.status().chunks

        # The embedder alone on exactly the texts the pipeline embedded.
        inputs: list[str] = []
        with fathom.store.session() as session:
            from fathom.store.schema import ChunkRow, DocumentRow

            for chunk, title in session.query(ChunkRow, DocumentRow.title).join(DocumentRow):
                inputs.append(contextual_text(title, chunk.heading_path, chunk.text))
        started = time.perf_counter()
        embedder.embed_documents(inputs)
        embed_s = time.perf_counter() - started
        parse_started = time.perf_counter()
        for path in iter_files(args.seeds):
            parse_bytes(path.read_bytes(), path.name)
        parse_s = time.perf_counter() - parse_started

        questions = [json.loads(line)["question"] for line in args.qa.read_text().splitlines()]
        search_ms: list[float] = []
        ask_ms: list[float] = []
        for repeat in range(args.repeats + 1):
            for question in questions:
                # A new string per repeat keeps the query-embedding cache out of the figures.
                query = question if repeat == 0 else f"{question} {' ' * repeat}".strip() + "?" * repeat
                started = time.perf_counter()
                fathom.search(query, k=10)
                elapsed_search = (time.perf_counter() - started) * 1000
                started = time.perf_counter()
                fathom.ask(query + " ")
                elapsed_ask = (time.perf_counter() - started) * 1000
                if repeat > 0:  # the first pass warms caches and threads
                    search_ms.append(elapsed_search)
                    ask_ms.append(elapsed_ask)
        fathom.close()

    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "documents": report.count("added"),
        "chunks": chunks,
        "ingest_seconds": round(ingest_s, 2),
        "ingest_chunks_per_s": round(chunks / ingest_s, 1),
        "embedder_chunks_per_s": round(chunks / embed_s, 1),
        "parse_seconds": round(parse_s, 3),
        "search_p50_ms": round(statistics.median(search_ms), 1),
        "search_p95_ms": round(percentile(search_ms, 95), 1),
        "ask_p50_ms": round(statistics.median(ask_ms), 1),
        "ask_p95_ms": round(percentile(ask_ms, 95), 1),
        "queries": len(search_ms),
    }
    out = ROOT / "bench" / "results" / "foundation.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    table = readme_table(result)
    print(table)
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(_START) + len(_START), text.index(_END)
    readme.write_text(text[:start] + "\n" + table + "\n" + text[end:], encoding="utf-8")
    print(f"\nmachine: {result['machine']}; written to {out.relative_to(ROOT)} and the README table")


_START, _END = "<!-- bench/foundation.py:start -->", "<!-- bench/foundation.py:end -->"


def readme_table(result: dict[str, object]) -> str:
    """The README's figures table, made from the JSON results."""
    r = result
    rows = [
        ("documents / chunks", f"{r['documents']} / {r['chunks']}"),
        ("ingest end to end", f"{r['ingest_chunks_per_s']} chunks/s ({r['ingest_seconds']} s)"),
        ("embedder alone (same chunk texts)", f"{r['embedder_chunks_per_s']} chunks/s"),
        ("search, in process, p50 / p95", f"{r['search_p50_ms']} / {r['search_p95_ms']} ms"),
        ("ask, in process, p50 / p95", f"{r['ask_p50_ms']} / {r['ask_p95_ms']} ms"),
    ]
    return "| figure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


if __name__ == "__main__":
    main()
