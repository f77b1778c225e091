"""Service load: requests/s and p50/p95 latency of /v1/search and /v1/ask over real HTTP.

    python bench/service_load.py [--corpus ../shared/data/scifact/corpus.jsonl] [--limit-docs N]
        [--queries FILE ...] [--concurrency 1,8,32] [--requests 150]

Ingests the corpus (a BEIR corpus.jsonl, or a folder of files) into a fresh home with the
packaged model, starts `fathom serve` on 127.0.0.1, and drives it with a bounded async client:
at each concurrency level C, C clients send requests back to back until the level's request
count is reached (after a short warm-up). Every request of the run sends a query of its own
(SciFact's test and train queries: 1,106 measured), so no cache of the server answers one; the
run refuses to start when the levels need more. Rate limits are off for the run. Writes
bench/results/service_load.json and prints a Markdown table; the table also goes into
docs/service.md between its bench markers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from fathom import Fathom
from fathom.eval.metrics import percentile

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
RESULTS = ROOT / "bench" / "results" / "service_load.json"
DOC_PAGE = ROOT / "docs" / "service.md"
START, END = "<!-- bench/service_load.py:start -->", "<!-- bench/service_load.py:end -->"


def _write_corpus(corpus: Path, limit: int | None, folder: Path) -> int:
    """A BEIR corpus.jsonl becomes one text file per document; a folder is used as it is."""
    count = 0
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and count >= limit:
                break
            doc = json.loads(line)
            (folder / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}\n", encoding="utf-8")
            count += 1
    return count


def _queries(paths: list[Path]) -> list[str]:
    """Distinct query texts from the given files (in order), or a few built-in ones."""
    texts: dict[str, None] = {}
    for path in paths:
        if path.exists():
            for line in path.open(encoding="utf-8"):
                if line.strip():
                    texts.setdefault(json.loads(line)["text"], None)
    if texts:
        return list(texts)
    return [
        "How does fathom rank search results?",
        "What happens when a process crashes during ingest?",
        "Which file formats can be ingested?",
        "How are answers cited?",
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _level(
    url: str,
    path: str,
    headers: dict[str, str],
    queries: list[str],
    clients: int,
    total: int,
    offset: int = 0,
) -> dict[str, Any]:
    """``total`` requests from ``clients`` concurrent clients, queries taken from ``offset`` on
    (each level its own queries, so no cache of the server's answers from an earlier level; the
    last three queries are the warm-up)."""
    latencies: list[float] = []
    errors = 0
    issued = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal issued, errors
        while issued < total:
            query = queries[offset + issued]
            issued += 1
            started = time.perf_counter()
            response = await http.post(path, json={"query": query}, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
        for query in queries[-3:]:  # warm-up, not measured
            await http.post(path, json={"query": query}, headers=headers)
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "endpoint": path,
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
    }


def _embedding_passes(url: str) -> tuple[float, float]:
    """(queries embedded, forward passes) so far, from the server's metrics (one process's)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    values = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("fathom_query_embedding_batch_size_"):
            values[name.rsplit("_", 1)[1]] = float(value)
    return values["sum"], values["count"]


def _table(results: dict[str, Any]) -> str:
    rows = [
        f"Corpus: {results['corpus']} ({results['documents']} documents, {results['chunks']} chunks); "
        f"{results['machine']['cpus']} CPUs, no GPU; {results['server_workers']} server process(es); "
        f"load average {results['machine'].get('load_average_1m_at_end', '?')} at the end.",
        "",
        "| endpoint | clients | requests | errors | req/s | p50 ms | p95 ms | queries/pass |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows += [
        f"| `{r['endpoint']}` | {r['clients']} | {r['requests']} | {r['errors']} | {r['requests_per_s']} "
        f"| {r['p50_ms']} | {r['p95_ms']} | {r.get('queries_per_pass', '-')} |"
        for r in results["levels"]
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=SCIFACT / "corpus.jsonl")
    parser.add_argument("--limit-docs", type=int, default=None, help="Ingest only the first N documents.")
    parser.add_argument(
        "--queries",
        type=Path,
        nargs="+",
        default=[SCIFACT / "queries.jsonl", SCIFACT / "queries_train.jsonl"],
        help="Query files (BEIR queries.jsonl); every request of the run sends a query of its own.",
    )
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument(
        "--endpoints", default="/v1/search,/v1/ask", help="Comma-separated endpoints to load."
    )
    parser.add_argument(
        "--requests", type=int, default=150, help="Requests per level (at least 4 per client)."
    )
    parser.add_argument("--workers", type=int, default=1, help="Server processes.")
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="Serve this home; ingest the corpus into it only when it holds no documents "
        "(default: a temporary home).",
    )
    parser.add_argument("--no-docs", action="store_true", help="Do not update docs/service.md.")
    args = parser.parse_args()
    if not args.corpus.exists():
        raise SystemExit(f"corpus not found at {args.corpus}")

    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        if args.corpus.is_dir():
            folder, documents = args.corpus, sum(1 for p in args.corpus.rglob("*") if p.is_file())
        else:
            folder = Path(tmp) / "corpus"
            folder.mkdir()
            documents = _write_corpus(args.corpus, args.limit_docs, folder)
        started = time.perf_counter()
        with Fathom(home=home) as fathom:
            if args.home is not None and fathom.status().documents:
                documents = fathom.status().documents  # a reused home is served as it is
            else:
                fathom.ingest([folder])
            chunks = fathom.status().chunks
            key, _ = fathom.keys.create(tenant="default", user="bench")
        print(
            f"serving {documents} documents ({chunks} chunks), ready in {time.perf_counter() - started:.0f} s"
        )

        port = _free_port()
        env = {
            **os.environ,
            "FATHOM_HOME": str(home),
            "FATHOM_RATE_LIMIT_PER_MINUTE": "0",
            "FATHOM_ANSWER_TOKENS_PER_MINUTE": "0",
            "FATHOM_LOG_LEVEL": "WARNING",
        }
        command = [
            sys.executable,
            "-m",
            "fathom",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        server = subprocess.Popen(command, env=env, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            headers = {"Authorization": f"Bearer {key}"}
            queries = _queries(args.queries)
            endpoints = args.endpoints.split(",")
            levels_wanted = [int(c) for c in args.concurrency.split(",")]
            needed = len(endpoints) * sum(max(args.requests, 4 * c) for c in levels_wanted)
            if needed > len(queries) - 3:
                # A repeated query would be answered from the server's caches (query vectors,
                # answer sentences) and hide the model.
                raise SystemExit(
                    f"{needed} requests need as many distinct queries; only {len(queries) - 3} "
                    "are available: lower --requests or add --queries files"
                )
            levels = []
            offset = 0
            for path in endpoints:
                for clients in levels_wanted:
                    total = max(args.requests, 4 * clients)
                    embedded, passes = _embedding_passes(url)
                    level = asyncio.run(_level(url, path, headers, queries, clients, total, offset))
                    embedded_after, passes_after = _embedding_passes(url)
                    if passes_after > passes:
                        # Queries per forward pass of the query embedder (warm-up included).
                        per_pass = (embedded_after - embedded) / (passes_after - passes)
                        level["queries_per_pass"] = round(per_pass, 2)
                    offset += total
                    print(json.dumps(level))
                    levels.append(level)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    results = {
        "corpus": str(args.corpus.name if args.corpus.is_file() else args.corpus),
        "documents": documents,
        "chunks": chunks,
        "server_workers": args.workers,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            # Other work on a shared machine skews every figure; the load says how much.
            "load_average_1m_at_end": round(os.getloadavg()[0], 1),
        },
        "levels": levels,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = _table(results)
    print(table)
    if not args.no_docs and DOC_PAGE.exists():
        page = DOC_PAGE.read_text(encoding="utf-8")
        if START in page and END in page:
            head, rest = page.split(START, 1)
            DOC_PAGE.write_text(f"{head}{START}\n{table}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")


if __name__ == "__main__":
    main()
