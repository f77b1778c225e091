"""Is in-process search slower than before a change? Two trees, the same corpus, one run.

    python bench/search_regression.py --before-src /path/to/old/src [--docs 1500] [--rounds 2]
        [--homes /tmp/search-regression] [--quiet-machine]

Separates the two things a search's time is made of, for each variant (``before``: the source
tree given by ``--before-src``, e.g. a worktree of an older commit; ``after``: this tree):

* *pipeline*: ``Fathom.search(k=100)`` (what ``fathom eval retrieval`` times) over the first
  ``--docs`` SciFact abstracts with the ``hash:384`` embedder, so the model costs nothing and
  what is left is fathom's own code: backend search, fusion, reading hits, collapse. Each
  variant ingests its own home with its own code (kept under ``--homes``).
* *query embedding*: the packaged MiniLM's ``embed_query`` alone, on the calling thread.

Each measurement runs in a child process with its own ``PYTHONPATH``; rounds alternate the
variants so a shared machine's load falls on both alike. CPU milliseconds per search (user +
system, every thread of the process) are reported beside the wall time: they move less with
load. Writes bench/results/search_regression.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SCIFACT = SHARED / "data" / "scifact"
RESULTS = ROOT / "bench" / "results" / "search_regression.json"

# The child: measures one variant (the tree on its PYTHONPATH) and prints one JSON line.
_CHILD = r"""
import json, resource, statistics, sys, time
from fathom import Fathom

mode, home, queries_file, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
queries = [json.loads(line)["text"] for line in open(queries_file, encoding="utf-8")]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


model = "sentence-transformers:all-MiniLM-L6-v2"
fathom = Fathom(home=home) if mode == "pipeline" else Fathom(home=home, embedder=model)
run = (lambda q: fathom.search(q, k=100)) if mode == "pipeline" else fathom.embedder.embed_query
for query in queries[:30]:
    run(query + " (warm-up)")
walls = []
started = cpu()
for i in range(count):
    query = queries[30 + i % (len(queries) - 30)]
    begun = time.perf_counter()
    run(query)
    walls.append((time.perf_counter() - begun) * 1000)
print(json.dumps({"wall_p50_ms": statistics.median(walls), "cpu_ms": (cpu() - started) * 1000 / count}))
"""


def _write_corpus(folder: Path, limit: int) -> Path:
    if folder.is_dir() and len(list(folder.iterdir())) == limit:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        for i, line in enumerate(lines):
            if i >= limit:
                break
            doc = json.loads(line)
            (folder / f"{doc['_id']}.md").write_text(
                f"# {doc.get('title', '')}\n\n{doc['text']}\n", encoding="utf-8"
            )
    return folder


def _env(src: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src), "FATHOM_LOG_LEVEL": "WARNING", **extra}


def _ingest(src: Path, home: Path, corpus: Path) -> None:
    if (home / "fathom.db").exists():
        return
    subprocess.run(
        [sys.executable, "-m", "fathom", "ingest", "--json", str(corpus)],
        env=_env(src, FATHOM_HOME=str(home), FATHOM_EMBEDDER="hash:384"),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _measure(src: Path, mode: str, home: Path, count: int) -> dict[str, float]:
    extra = {"FATHOM_EMBEDDER": "hash:384"} if mode == "pipeline" else {}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(home), str(SCIFACT / "queries.jsonl"), str(count)],
        env=_env(src, **extra),
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before-src", type=Path, required=True, help="The older tree's src/ folder.")
    parser.add_argument("--docs", type=int, default=1500, help="SciFact abstracts in the pipeline homes.")
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--homes", type=Path, default=Path("/tmp/search-regression"))
    parser.add_argument("--quiet-machine", action="store_true", help="Nothing else ran: say so.")
    args = parser.parse_args()
    if not SCIFACT.is_dir():
        print(f"SciFact is not at {SCIFACT}: nothing to measure", file=sys.stderr)
        return 2
    variants = {"before": args.before_src.resolve(), "after": ROOT / "src"}
    corpus = _write_corpus(args.homes / "corpus", args.docs)
    for name, src in variants.items():
        _ingest(src, args.homes / f"pipeline-{name}", corpus)
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {"pipeline": [], "embedding": []} for name in variants
    }
    for _ in range(args.rounds):
        for name, src in variants.items():
            samples[name]["pipeline"].append(
                _measure(src, "pipeline", args.homes / f"pipeline-{name}", args.searches)
            )
            samples[name]["embedding"].append(_measure(src, "embedding", args.homes / f"model-{name}", 200))
    rows: dict[str, Any] = {}
    for name, modes in samples.items():
        rows[name] = {
            mode: {
                key: round(statistics.median(s[key] for s in runs), 2) for key in ("wall_p50_ms", "cpu_ms")
            }
            for mode, runs in modes.items()
        }
    machine = "quiet machine" if args.quiet_machine else "under load (other work ran)"
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {machine}",
        "docs": args.docs,
        "searches": args.searches,
        "rounds": args.rounds,
        "before_src": str(variants["before"]),
        "variants": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{result['machine']}; {args.docs} SciFact abstracts, k=100, {args.rounds} rounds (medians)\n")
    print("| variant | search without the model: p50 / CPU ms | query embedding: p50 / CPU ms |")
    print("|---|---|---|")
    for name, row in rows.items():
        pipe, emb = row["pipeline"], row["embedding"]
        print(
            f"| {name} | {pipe['wall_p50_ms']} / {pipe['cpu_ms']} | {emb['wall_p50_ms']} / {emb['cpu_ms']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
