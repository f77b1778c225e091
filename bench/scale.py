"""Scale figures: index build time, hybrid search latency and peak RSS at 100k and 1M chunks.

    python bench/scale.py [--sizes 100000 1000000] [--work /tmp/fathom-scale] [--queries 300]
    python bench/scale.py --backend postgres [--pg-dir /tmp/fathom-scale-pg | --database-url URL]
        [--writers 2] --sizes 100000

With ``--backend postgres`` the home keeps no index: the store writes the search rows in each
document's transaction (``index_backend = "postgres"``), in ``--writers`` parallel processes, into a
fresh database per size on the server (a ``fathom pg start`` server in ``--pg-dir`` by default).
It also reports the database's size on disk, the server's memory (PSS summed over its
processes) and the searching process's peak RSS: a serving node holds no index.

For each size it builds a synthetic corpus into a real fathom home — documents,
chunks and embeddings committed through the store of record, then the lexical and
dense indexes caught up from the change log, exactly as an ingest does — and then,
in a fresh process, times hybrid retrieval (BM25 + dense + fusion, the product's
``HybridRetriever``) with precomputed query vectors, so query embedding is excluded.

Text: chunks recombine sentences of ``../shared/data/scifact/corpus.jsonl`` (a
built-in Zipfian word generator when it is absent). Vectors: 384-d unit vectors
around 2,000 topic centroids (chunks of one document share a topic), so the HNSW
graph sees clustered data. Each phase runs in its own process and reports its own
peak RSS. Writes bench/results/scale.json, the table in docs/scale.md and the plot
bench/results/scale.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import make_url

from fathom.eval.metrics import percentile

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DIM = 384
TOPICS = 2_000
CHUNKS_PER_DOC = 20
DOCS_PER_COMMIT_BATCH = 1_000  # documents written between two index catch-ups
SEED = 20261124


# -- synthetic corpus -------------------------------------------------------------------------


def _sentences(corpus: Path) -> list[str]:
    """Sentences to recombine: SciFact abstracts when present, else a Zipfian generator."""
    if corpus.exists():
        out: list[str] = []
        with corpus.open(encoding="utf-8") as handle:
            for line in handle:
                text = json.loads(line)["text"]
                out.extend(s for s in re.split(r"(?<=[.!?])\s+", text) if 20 <= len(s) <= 400)
        if out:
            return out
    rng = np.random.default_rng(SEED)
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    vocabulary = ["".join(rng.choice(list(letters), size=rng.integers(2, 10))) for _ in range(20_000)]
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    sentences = []
    for _ in range(50_000):
        words = rng.choice(vocabulary, size=int(rng.integers(8, 30)), p=weights)
        sentences.append(" ".join(words).capitalize() + ".")
    return sentences


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def _centroids() -> np.ndarray:
    return _unit(np.random.default_rng(SEED).standard_normal((TOPICS, DIM)))


def _chunk_vectors(rng: np.random.Generator, centroid: np.ndarray, count: int) -> np.ndarray:
    # Noise of norm ~0.8 around a unit centroid: cosine ~0.78 to the centroid, ~0.6 between
    # chunks of one topic, ~0 across topics.
    noise = rng.standard_normal((count, DIM)) * (0.8 / np.sqrt(DIM))
    return _unit(centroid + noise)


def _documents(size: int, sentences: list[str]) -> Iterator[tuple[int, list[str], np.ndarray, int]]:
    """(document number, chunk texts, chunk vectors, topic), deterministic for a size."""
    rng = np.random.default_rng(SEED + 1)
    picker = random.Random(SEED)
    centroids = _centroids()
    for number in range(size // CHUNKS_PER_DOC):
        topic = int(rng.integers(TOPICS))
        texts = [" ".join(picker.choices(sentences, k=picker.randint(3, 6))) for _ in range(CHUNKS_PER_DOC)]
        yield number, texts, _chunk_vectors(rng, centroids[topic], CHUNKS_PER_DOC), topic


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


# -- phases (each in its own process) ------------------------------------------------------


def _open(home: Path, database_url: str | None = None) -> Any:
    from fathom import Fathom

    # The model is never loaded: embeddings are generated, and queries bring their vectors.
    if database_url is None:
        return Fathom(home=home, embedder=f"hash:{DIM}", log_level="WARNING")
    return Fathom(
        home=home,
        embedder=f"hash:{DIM}",
        log_level="WARNING",
        database_url=database_url,
        index_backend="postgres",
    )


def _put(fathom: Any, number: int, texts: list[str], vectors: np.ndarray) -> None:
    from fathom.ingest.fingerprint import fingerprint
    from fathom.store.database import ChunkDraft

    drafts, offset, parts = [], 0, []
    for ordinal, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        drafts.append(
            ChunkDraft(
                ordinal=ordinal,
                start=offset,
                end=offset + len(text),
                text=text,
                heading_path=(f"Section {ordinal // 5 + 1}",),
                token_count=len(text.split()),
                content_hash=f"{number:08d}-{ordinal:03d}",
                embedding=vector,
                minhash=fingerprint(text),
            )
        )
        parts.append(text)
        offset += len(text) + 2
    fathom.store.put_document(
        tenant=fathom.settings.tenant,
        source=f"synthetic://doc/{number:08d}",
        title=f"Synthetic document {number}",
        mime_type="text/plain",
        content_hash=f"{number:016x}",
        text="\n\n".join(parts),
        metadata={"shard": "even" if number % 2 == 0 else "odd"},
        chunks=drafts,
        embedding_model=f"hash:{DIM}",
    )


def build(size: int, home: Path, corpus: Path, budget_s: float | None) -> dict[str, Any]:
    """Write ``size`` chunks into a fresh home, catching the indexes up every 1,000 documents.

    With a time budget the build stops at the first catch-up past it, and reports the
    chunks it reached (a shared machine may not finish 1M in time).
    """
    shutil.rmtree(home, ignore_errors=True)
    sentences = _sentences(corpus)
    fathom = _open(home)
    store_s = index_s = index_cpu_s = 0.0
    started = time.perf_counter()
    for number, texts, vectors, _topic in _documents(size, sentences):
        t0 = time.perf_counter()
        _put(fathom, number, texts, vectors)
        store_s += time.perf_counter() - t0
        if (number + 1) % DOCS_PER_COMMIT_BATCH == 0:
            t0, c0 = time.perf_counter(), time.process_time()
            fathom.indexer.catch_up()
            index_s += time.perf_counter() - t0
            index_cpu_s += time.process_time() - c0
            print(f"  {(number + 1) * CHUNKS_PER_DOC:>9,} chunks  index {index_s:7.1f} s", flush=True)
            if budget_s is not None and time.perf_counter() - started > budget_s:
                break
    t0, c0 = time.perf_counter(), time.process_time()
    fathom.indexer.catch_up()
    index_s += time.perf_counter() - t0
    index_cpu_s += time.process_time() - c0
    total_s = time.perf_counter() - started

    # Catch-up after a small ingest into the big home: one more document of 20 chunks.
    sentences_rng = np.random.default_rng(SEED + 2)
    extra = [" ".join(random.Random(i).choices(sentences, k=4)) for i in range(CHUNKS_PER_DOC)]
    built = fathom.store.counts()[1]
    _put(fathom, size, extra, _chunk_vectors(sentences_rng, _centroids()[0], CHUNKS_PER_DOC))
    t0 = time.perf_counter()
    fathom.indexer.catch_up()
    small_catch_up_ms = (time.perf_counter() - t0) * 1000
    status = fathom.status()
    fathom.close()
    return {
        "chunks": status.chunks,
        "target_chunks": size,
        "complete": built >= size,
        "documents": status.documents,
        "store_write_s": round(store_s, 1),
        "index_catch_up_s": round(index_s, 1),
        "index_catch_up_cpu_s": round(index_cpu_s, 1),
        "build_total_s": round(total_s, 1),
        "small_ingest_catch_up_ms": round(small_catch_up_ms, 1),
        "build_peak_rss_mb": round(_peak_rss_mb()),
        "home_disk_mb": round(_dir_mb(home)),
        "index_disk_mb": round(_dir_mb(home / "index")),
    }


class _PrecomputedEmbedder:
    """Answers ``embed_query`` from precomputed vectors, so timings exclude the model."""

    name = f"precomputed:{DIM}"
    dim = DIM
    max_tokens = 256

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self._vectors = vectors

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vectors[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vectors[text]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def _queries(size: int, count: int, corpus: Path) -> list[tuple[str, np.ndarray]]:
    """Queries of 4-8 words taken from random chunks, with vectors near those chunks'."""
    sentences = _sentences(corpus)
    picker = random.Random(SEED + 3)
    rng = np.random.default_rng(SEED + 4)
    centroids = _centroids()
    wanted = sorted(picker.sample(range(size // CHUNKS_PER_DOC), count))
    out: list[tuple[str, np.ndarray]] = []
    documents = _documents(size, sentences)
    for number, texts, vectors, _topic in documents:
        if number != wanted[len(out)]:
            continue
        chunk = picker.randrange(CHUNKS_PER_DOC)
        words = re.findall(r"\w+", texts[chunk])
        start = picker.randrange(max(1, len(words) - 8))
        text = " ".join(words[start : start + picker.randint(4, 8)])
        vector = _unit(vectors[chunk] + rng.standard_normal(DIM) * (0.5 / np.sqrt(DIM)))
        out.append((text, vector))
        if len(out) == count:
            break
    del centroids
    return out


def _pg_writer(home: Path, url: str, corpus: Path, size: int, writer: int, writers: int) -> None:
    """One of ``writers`` processes building a postgres home: every ``writers``-th document."""
    sentences = _sentences(corpus)
    fathom = _open(home / f"writer-{writer}", url)
    for number, texts, vectors, _topic in _documents(size, sentences):
        if number % writers == writer:
            _put(fathom, number, texts, vectors)
    fathom.close()


def build_postgres(size: int, home: Path, url: str, corpus: Path, writers: int) -> dict[str, Any]:
    """Write ``size`` chunks through the store with the postgres backend, in parallel writers."""
    import multiprocessing

    from bench.pg_server import database_sizes, server_memory_mb

    shutil.rmtree(home, ignore_errors=True)
    _open(home, url).close()  # migrate the store and create the search tables once
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    processes = [
        context.Process(target=_pg_writer, args=(home, url, corpus, size, w, writers)) for w in range(writers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"a writer failed with exit code {process.exitcode}")
    total_s = time.perf_counter() - started
    fathom = _open(home, url)
    sentences_rng = np.random.default_rng(SEED + 2)
    extra = [" ".join(random.Random(i).choices(_sentences(corpus), k=4)) for i in range(CHUNKS_PER_DOC)]
    t0 = time.perf_counter()
    _put(fathom, size, extra, _chunk_vectors(sentences_rng, _centroids()[0], CHUNKS_PER_DOC))
    fathom.indexer.catch_up()
    small_write_ms = (time.perf_counter() - t0) * 1000
    status = fathom.status()
    fathom.close()
    return {
        "backend": "postgres",
        "writers": writers,
        "chunks": status.chunks,
        "target_chunks": size,
        "complete": status.chunks >= size,
        "documents": status.documents,
        "store_write_s": round(total_s, 1),
        "index_catch_up_s": 0.0,
        "build_total_s": round(total_s, 1),
        "chunks_per_s": round(size / total_s, 1),
        "small_ingest_catch_up_ms": round(small_write_ms, 1),
        "build_peak_rss_mb": round(_peak_rss_mb()),
        "home_disk_mb": round(_dir_mb(home)),
        "index_disk_mb": 0,
        "database": database_sizes(url),
        "server_memory_after_build": server_memory_mb(url),
    }


def search(
    size: int, home: Path, corpus: Path, count: int, database_url: str | None = None
) -> dict[str, Any]:
    """Time hybrid retrieval (no query embedding) over the built home, in a fresh process."""
    from fathom.index.types import IndexFilter
    from fathom.retrieve.hybrid import HybridRetriever

    t0 = time.perf_counter()
    fathom = _open(home, database_url)
    open_s = time.perf_counter() - t0
    rss_open = _peak_rss_mb()
    # Queries come from documents the build wrote (all of them unless it hit its budget).
    built = fathom.store.counts()[1] - CHUNKS_PER_DOC
    queries = _queries(min(size, built), count, corpus)
    retriever = HybridRetriever(
        fathom.indexer, fathom.store, _PrecomputedEmbedder(dict(queries)), fathom.settings
    )
    everything = IndexFilter(tenant=fathom.settings.tenant, acl_tokens=None)
    half = IndexFilter(tenant=fathom.settings.tenant, acl_tokens=None, metadata=("shard=even",))
    result: dict[str, Any] = {"open_s": round(open_s, 2), "rss_after_open_mb": round(rss_open)}
    for label, where in (("hybrid", everything), ("hybrid_filtered_half", half)):
        for text, _ in queries[:20]:  # warm up
            retriever.retrieve(text, where, 10)
        totals, cpu, lexical, dense, recall = [], [], [], [], 0
        for text, _ in queries:
            t0, c0 = time.perf_counter(), time.process_time()
            trace = retriever.retrieve(text, where, 10)
            totals.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            lexical.append(trace.timings_ms["lexical"])
            dense.append(trace.timings_ms["dense"])
            recall += bool(trace.fused)
        result[label] = {
            "p50_ms": round(percentile(totals, 50), 2),
            "p95_ms": round(percentile(totals, 95), 2),
            "cpu_p50_ms": round(percentile(cpu, 50), 2),
            "cpu_p95_ms": round(percentile(cpu, 95), 2),
            "lexical_p50_ms": round(statistics.median(lexical), 2),
            "dense_p50_ms": round(statistics.median(dense), 2),
            "queries": len(totals),
            "queries_with_results": recall,
        }
    # The per-search catch-up check a caught-up home pays (Fathom.search calls it).
    checks = []
    for _ in range(100):
        t0 = time.perf_counter()
        fathom.indexer.catch_up()
        checks.append((time.perf_counter() - t0) * 1000)
    result["caught_up_check_p50_ms"] = round(statistics.median(checks), 3)
    result["search_peak_rss_mb"] = round(_peak_rss_mb())
    if database_url is not None:
        from bench.pg_server import database_sizes, server_memory_mb

        result["server_memory_after_search"] = server_memory_mb(database_url)
        result["database"] = database_sizes(database_url)
    retriever.close()
    fathom.close()
    return result


# -- driver ------------------------------------------------------------------------------------


def _phase(args: argparse.Namespace, phase: str, size: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--phase",
        phase,
        "--sizes",
        str(size),
        "--work",
        str(args.work),
        "--corpus",
        str(args.corpus),
        "--queries",
        str(args.queries),
        *([] if args.build_minutes is None else ["--build-minutes", str(args.build_minutes)]),
        "--backend",
        args.backend,
        "--writers",
        str(args.writers),
        *([] if args.database_url is None else ["--database-url", args.database_url]),
    ]
    completed = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    for line in completed.stdout.splitlines():
        if not line.startswith("RESULT "):
            print(line, flush=True)
    last = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")][-1]
    return dict(json.loads(last.removeprefix("RESULT ")))


def _table(results: list[dict[str, Any]], machine: str) -> str:
    rows = [
        "| chunks | index build (catch-up) | store write | build peak RSS | "
        "hybrid p50 / p95 | filtered (half) p50 / p95 | CPU per query p50 (hybrid / filtered) | "
        "search peak RSS | catch-up after +20 chunks | index on disk |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b, s = r["build"], r["search"]
        stopped = "" if b.get("complete", True) else f" (of {b['target_chunks']:,}: stopped)"
        rows.append(
            f"| {b['chunks']:,}{stopped} | {b['index_catch_up_s']:.0f} s | {b['store_write_s']:.0f} s | "
            f"{b['build_peak_rss_mb'] / 1024:.2f} GB | "
            f"{s['hybrid']['p50_ms']:.1f} / {s['hybrid']['p95_ms']:.1f} ms | "
            f"{s['hybrid_filtered_half']['p50_ms']:.1f} / {s['hybrid_filtered_half']['p95_ms']:.1f} ms | "
            f"{s['hybrid']['cpu_p50_ms']:.1f} / {s['hybrid_filtered_half']['cpu_p50_ms']:.1f} ms | "
            f"{s['search_peak_rss_mb'] / 1024:.2f} GB | {b['small_ingest_catch_up_ms']:.0f} ms | "
            f"{b['index_disk_mb'] / 1024:.2f} GB |"
        )
    return "\n".join(rows) + f"\n\nMachine: {machine}. Latency excludes query embedding.\n"


def _table_postgres(results: list[dict[str, Any]], machine: str) -> str:
    rows = [
        "| chunks | build (writers) | chunks/s | hybrid p50 / p95 | filtered (half) p50 / p95 "
        "| lexical / dense p50 | database on disk (search tables, HNSW) | server PSS after search "
        "| serving node peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b, s = r["build"], r["search"]
        disk, memory = s.get("database", b["database"]), s.get("server_memory_after_search") or {}
        rows.append(
            f"| {b['chunks']:,} | {b['build_total_s']:.0f} s ({b['writers']}) | {b['chunks_per_s']:.0f} "
            f"| {s['hybrid']['p50_ms']:.1f} / {s['hybrid']['p95_ms']:.1f} ms "
            f"| {s['hybrid_filtered_half']['p50_ms']:.1f} / {s['hybrid_filtered_half']['p95_ms']:.1f} ms "
            f"| {s['hybrid']['lexical_p50_ms']:.1f} / {s['hybrid']['dense_p50_ms']:.1f} ms "
            f"| {disk['database_mb'] / 1024:.2f} GB ({disk['search_tables_mb'] / 1024:.2f}, "
            f"{disk['hnsw_mb'] / 1024:.2f}) | {memory.get('pss_mb', float('nan')) / 1024:.2f} GB "
            f"| {s['search_peak_rss_mb'] / 1024:.2f} GB |"
        )
    return (
        "\n".join(rows)
        + f"\n\nMachine: {machine}, shared with other work. Latency excludes query embedding.\n"
    )


def _write_docs(table: str) -> None:
    doc = ROOT / "docs" / "scale.md"
    start, end = "<!-- bench/scale.py:start -->", "<!-- bench/scale.py:end -->"
    text = doc.read_text(encoding="utf-8")
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    doc.write_text(f"{before}{start}\n{table}{end}{after}", encoding="utf-8")


def _plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["build"]["chunks"] for r in results]
    figure, (latency, memory) = plt.subplots(1, 2, figsize=(10, 4))
    latency.plot(sizes, [r["search"]["hybrid"]["p50_ms"] for r in results], "o-", label="p50")
    latency.plot(sizes, [r["search"]["hybrid"]["p95_ms"] for r in results], "s--", label="p95")
    latency.plot(sizes, [r["search"]["hybrid"]["cpu_p50_ms"] for r in results], "^:", label="CPU p50")
    latency.axhline(20, color="grey", linewidth=0.8, linestyle=":", label="target p50 at 1M")
    latency.set(xscale="log", xlabel="chunks", ylabel="ms per query", title="Hybrid search (no embedding)")
    latency.legend()
    memory.plot(sizes, [r["build"]["build_peak_rss_mb"] / 1024 for r in results], "o-", label="build")
    memory.plot(sizes, [r["search"]["search_peak_rss_mb"] / 1024 for r in results], "s--", label="search")
    memory.axhline(4, color="grey", linewidth=0.8, linestyle=":", label="target at 1M")
    memory.set(xscale="log", xlabel="chunks", ylabel="GB", title="Peak RSS")
    memory.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/fathom-scale"))
    parser.add_argument(
        "--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
    )
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--build-minutes", type=float, help="stop a build at the first catch-up past this many minutes"
    )
    parser.add_argument("--reuse", action="store_true", help="search homes built by an earlier run")
    parser.add_argument("--backend", choices=["embedded", "postgres"], default="embedded")
    parser.add_argument("--pg-dir", type=Path, default=Path("/tmp/fathom-scale-pg"))
    parser.add_argument("--database-url", help="postgres backend: a server URL (default: --pg-dir's)")
    parser.add_argument("--writers", type=int, default=2, help="postgres backend: parallel writers")
    parser.add_argument("--phase", choices=["build", "search"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if str(ROOT) not in sys.path:  # run as a script: the bench helpers are imported as ``bench.*``
        sys.path.insert(0, str(ROOT))
    postgres = args.backend == "postgres"
    if postgres and args.database_url is None:
        from bench.pg_server import local_server_url

        args.database_url = local_server_url(args.pg_dir)
    if args.phase is not None:
        size = args.sizes[0]
        home = args.work / (f"pg-home-{size}" if postgres else f"home-{size}")
        url = None
        if postgres:
            from bench.pg_server import create_database

            url = create_database(args.database_url, f"scale_{size}") if args.phase == "build" else None
            url = url or make_url(args.database_url).set(database=f"scale_{size}").render_as_string(False)
        if args.phase == "build" and url is not None:
            out = build_postgres(size, home, url, args.corpus, args.writers)
        elif args.phase == "build":
            budget = None if args.build_minutes is None else args.build_minutes * 60
            out = build(size, home, args.corpus, budget)
        else:
            out = search(size, home, args.corpus, args.queries, url)
        print("RESULT " + json.dumps(out), flush=True)
        return

    RESULTS.mkdir(parents=True, exist_ok=True)
    output = RESULTS / ("scale_postgres.json" if postgres else "scale.json")

    def previous() -> dict[int, dict[str, Any]]:
        # Read again before writing: runs for different sizes may overlap.
        results = json.loads(output.read_text())["results"] if output.exists() else []
        return {r["size"]: r for r in results}

    measured: dict[int, dict[str, Any]] = {}
    for size in args.sizes:
        print(f"== {size:,} chunks", flush=True)
        entry = dict(previous().get(size, {"size": size}))
        if not args.reuse or "build" not in entry:
            entry["build"] = _phase(args, "build", size)
            print(json.dumps(entry["build"]), flush=True)
        entry["search"] = _phase(args, "search", size)
        print(json.dumps(entry["search"]), flush=True)
        measured[size] = entry
    by_size = {**previous(), **measured}
    results = [by_size[s] for s in sorted(by_size)]
    machine = f"{os.cpu_count()} cores, {platform.machine()}, no GPU, Python {platform.python_version()}"
    meta = {
        "machine": machine,
        "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "command": "python bench/scale.py --sizes "
        + " ".join(str(s) for s in args.sizes)
        + (f" --backend postgres --writers {args.writers}" if postgres else ""),
        "load_average": os.getloadavg(),
        "dim": DIM,
        "chunks_per_document": CHUNKS_PER_DOC,
        "catch_up_every_documents": DOCS_PER_COMMIT_BATCH,
        "text_source": str(args.corpus) if args.corpus.exists() else "built-in Zipfian generator",
    }
    output.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    if postgres:
        table = _table_postgres(results, machine)
        print(table)
        from bench.machine import replace_between_markers

        replace_between_markers(ROOT / "docs" / "scale.md", "bench/scale.py --backend postgres", table)
        return
    table = _table(results, machine)
    print(table)
    _write_docs(table)
    _plot(results, RESULTS / "scale.png")


if __name__ == "__main__":
    main()
