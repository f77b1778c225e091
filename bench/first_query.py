"""Time for a new serving node to answer its first query: embedded (catch-up) vs postgres.

    python -m bench.first_query [--sizes 10000 50000] [--work /tmp/fathom-first-query]

One PostgreSQL 18 + pgvector (``fathom pg start``'s, the ``postgres-local`` extra) holds one
store of record: synthetic documents of 20 chunks (``bench/scale.py``'s corpus, 384-d vectors,
``hash:384`` embedder, so no model runs), committed through ``Store.put_document``, and the
``postgres`` backend's search tables caught up from its change log. The store grows to each
size in turn; at each size a new node is started twice over, each time as a fresh Python
process with an empty home folder (no index files):

- **embedded**: ``index_backend = "embedded"``: opening catches tantivy and usearch up from the
  store's change log, from 0, before the first search;
- **postgres**: ``index_backend = "postgres"``: the search index is already in the database.

"first query" is the wall time from spawning the process to its first search's hits (Python
start, imports, opening, catch-up, one hybrid search), measured by this script; the node
reports its own split (imports, open, search). Writes ``bench/results/first_query.json`` and
the table between the ``bench/first_query.py`` markers in docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
QUERY = "randomized trial of vitamin supplementation and mortality"


def _node(backend: str, url: str) -> dict[str, Any]:
    """The new node (run in a fresh process): open an empty home, answer one search."""
    started = time.perf_counter()
    from fathom import Fathom

    imported = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fathom-new-node-") as home:
        fathom = Fathom(home=home, embedder="hash:384", database_url=url, index_backend=backend)
        opened = time.perf_counter()
        hits = fathom.search(QUERY, k=10)
        searched = time.perf_counter()
        indexed = fathom.backend.size()
        fathom.close()
    return {
        "import_s": round(imported - started, 3),
        "open_s": round(opened - imported, 3),
        "search_s": round(searched - opened, 3),
        "hits": len(hits),
        "indexed_chunks": indexed,
    }


def _spawn(backend: str, url: str) -> dict[str, Any]:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "bench.first_query", "--node", backend, "--url", url],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
    )
    wall = time.perf_counter() - started
    line = [x for x in completed.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return {"first_query_s": round(wall, 3), **json.loads(line.removeprefix("RESULT "))}


def _grow(url: str, target: int, sentences: list[str]) -> dict[str, float]:
    """Commit documents until the store holds ``target`` chunks, then catch the postgres index up."""
    from bench.scale import CHUNKS_PER_DOC, _documents, _put
    from fathom.index.catchup import Indexer
    from fathom.index.postgres import PostgresBackend
    from fathom.store.database import Store

    store = Store(url)
    backend = PostgresBackend(url)
    try:
        have = store.counts()[1]
        started = time.perf_counter()
        holder = _Holder(store)
        for number, texts, vectors, _topic in _documents(target, sentences):
            if number < have // CHUNKS_PER_DOC:
                continue
            _put(holder, number, texts, vectors)
        written = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            Indexer(store, backend, lock_path=Path(scratch) / "catchup.lock").catch_up()
        indexed = time.perf_counter()
        return {"store_write_s": round(written - started, 1), "postgres_index_s": round(indexed - written, 1)}
    finally:
        backend.close()
        store.close()


class _Holder:
    """What bench/scale.py's ``_put`` needs of a Fathom: its store and tenant."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.settings = argparse.Namespace(tenant="default")


def _table(rows: list[dict[str, Any]], note: str) -> str:
    lines = [
        "| chunks | backend | first query, median (runs) | Python start + imports | open (incl. catch-up) "
        "| first search | index files at start |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        runs = row["runs"]
        first = statistics.median(r["first_query_s"] for r in runs)
        imports = statistics.median(r["first_query_s"] - r["open_s"] - r["search_s"] for r in runs)
        opened = statistics.median(r["open_s"] for r in runs)
        search = statistics.median(r["search_s"] for r in runs)
        files = "caught up from 0" if row["backend"] == "embedded" else "none"
        lines.append(
            f"| {row['chunks']:,} | {row['backend']} | {first:.1f} s ({len(runs)}) | {imports:.1f} s "
            f"| {opened:.1f} s | "
            f"{search * 1000:.0f} ms | {files} |"
        )
    return "\n".join(lines) + f"\n\n{note}\n"


def _write_docs(table: str) -> None:
    doc = ROOT / "docs" / "scale.md"
    start, end = "<!-- bench/first_query.py:start -->", "<!-- bench/first_query.py:end -->"
    text = doc.read_text(encoding="utf-8")
    if start not in text:
        return
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    doc.write_text(f"{before}{start}\n{table}{end}{after}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/fathom-first-query"))
    parser.add_argument(
        "--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
    )
    parser.add_argument("--runs", type=int, default=3, help="new postgres nodes per size")
    parser.add_argument("--embedded-runs", type=int, default=1, help="new embedded nodes per size")
    parser.add_argument("--node", choices=["embedded", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node is not None:
        print("RESULT " + json.dumps(_node(args.node, args.url)), flush=True)
        return

    from bench.scale import _sentences
    from fathom.store import local_postgres

    shutil.rmtree(args.work, ignore_errors=True)
    server = local_postgres.start(args.work / "pg")
    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        url = server.url
        sentences = _sentences(args.corpus)
        for size in sorted(args.sizes):
            build = _grow(url, size, sentences)
            print(f"{size:,} chunks: {build}", flush=True)
            for backend, runs in (("postgres", args.runs), ("embedded", args.embedded_runs)):
                measured = [_spawn(backend, url) for _ in range(runs)]
                for run in measured:
                    assert run["hits"] > 0 and run["indexed_chunks"] >= size, run
                print(f"  {backend}: {[r['first_query_s'] for r in measured]} s", flush=True)
                rows.append({"chunks": size, "backend": backend, "build": build, "runs": measured})
    finally:
        local_postgres.stop(args.work / "pg")
    load = os.getloadavg()
    note = (
        f"Each run a fresh Python process with an empty home on the same PostgreSQL 18 store "
        f"(`hash:384` embedder: no model load; a real model adds the same load time to both). "
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"shared with other work (load average {load[0]:.1f} at the end), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: figures under load."
    )
    table = _table(rows, note)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "first_query.json").write_text(
        json.dumps({"rows": rows, "note": note, "total_s": round(time.perf_counter() - began, 1)}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    _write_docs(table)
    print(table)


if __name__ == "__main__":
    main()
