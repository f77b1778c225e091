"""End-to-end ingest throughput next to the embedder's raw throughput, on SciFact and the seeds.

    python bench/ingest_throughput.py [--scifact-docs 1000] [--repeats 1]

End to end is ``Fathom.ingest`` on a folder of files into a fresh home: read, parse
(in the parser worker pool, while the main process embeds earlier files), chunk,
embed, commit, and index catch-up. The raw figure is the same embedder alone on
exactly the texts the pipeline embedded, in the same process right after. SciFact
abstracts are written one file per document (title, blank line, abstract).

Writes bench/results/ingest_throughput.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fathom import Fathom
from fathom.config import DEFAULT_EMBEDDER
from fathom.domain import contextual_text
from fathom.embed import Embedder, create_embedder
from fathom.normalize import fold_for_index
from fathom.store.schema import ChunkRow, DocumentRow

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _scifact_folder(corpus: Path, target: Path, limit: int) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    with corpus.open(encoding="utf-8") as lines:
        for i, line in enumerate(lines):
            if i >= limit:
                break
            row = json.loads(line)
            (target / f"{row['_id']}.txt").write_text(f"{row['title']}\n\n{row['text']}\n", encoding="utf-8")
    return target


def _measure(folder: Path, embedder: Embedder, device: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home, Fathom(home=home, embedder=embedder, device=device) as fathom:
        fathom.parsers.parse(b"warm up the worker pool", "warm.txt")
        started = time.perf_counter()
        report = fathom.ingest([folder])
        end_to_end_s = time.perf_counter() - started
        assert report.ok, [o for o in report.outcomes if o.status == "failed"][:3]
        chunks = fathom.status().chunks
        with fathom.store.session() as session:
            inputs = [
                fold_for_index(contextual_text(title, chunk.heading_path, chunk.text))
                for chunk, title in session.query(ChunkRow, DocumentRow.title).join(DocumentRow)
            ]
    started = time.perf_counter()
    embedder.embed_documents(inputs)
    raw_s = time.perf_counter() - started
    return {
        "documents": float(len(report.outcomes)),
        "chunks": float(chunks),
        "end_to_end_s": end_to_end_s,
        "raw_embed_s": raw_s,
        "end_to_end_chunks_per_s": chunks / end_to_end_s,
        "raw_embed_chunks_per_s": len(inputs) / raw_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scifact", type=Path, default=SHARED / "data" / "scifact" / "corpus.jsonl")
    parser.add_argument("--seeds", type=Path, default=SHARED / "corpus" / "seeds")
    parser.add_argument("--scifact-docs", type=int, default=1000, help="SciFact documents (all: 5183).")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args()

    embedder = create_embedder(DEFAULT_EMBEDDER, device=args.device)
    embedder.embed_documents(["warm up"] * 8)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        corpora = {}
        if args.scifact.exists():
            corpora[f"scifact ({args.scifact_docs} docs)"] = _scifact_folder(
                args.scifact, Path(scratch) / "scifact", args.scifact_docs
            )
        if args.seeds.exists():
            corpora["seeds"] = args.seeds
        if not corpora:
            raise SystemExit("neither SciFact nor the seeds were found under ../shared")
        for name, folder in corpora.items():
            runs = [_measure(folder, embedder, args.device) for _ in range(args.repeats)]
            print(f"{name}: {runs}", file=sys.stderr, flush=True)
            results[name] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            results[name]["ratio"] = (
                results[name]["end_to_end_chunks_per_s"] / results[name]["raw_embed_chunks_per_s"]
            )

    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "device": args.device,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }
    out = ROOT / "bench" / "results" / "ingest_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"machine": machine, "repeats": args.repeats, "results": results}, indent=2) + "\n"
    )

    print(f"machine: {machine['cpus']} CPUs, {machine['memory_gb']} GB, device {args.device}")
    print("| corpus | documents | chunks | end to end chunks/s | raw embedder chunks/s | ratio |")
    print("|---|---|---|---|---|---|")
    for name, row in results.items():
        print(
            f"| {name} | {row['documents']:.0f} | {row['chunks']:.0f} | {row['end_to_end_chunks_per_s']:.1f} "
            f"| {row['raw_embed_chunks_per_s']:.1f} | {row['ratio']:.2f} |"
        )


if __name__ == "__main__":
    main()
