"""Parallel writers into the store with the postgres search backend: chunks/s and where the time goes.

    python -m bench.pg_writers --pg-dir /tmp/fathom-writers-pg [--writers 1 2 4] [--chunks 6000]
        [--variants full no-hnsw no-gin bare] [--label this-branch]

Each run gets a fresh database on a local PostgreSQL 18 + pgvector (``fathom pg start``; an
existing server in ``--pg-dir`` is reused) and ``--chunks`` chunks split across N writer
*processes* (Python threads would share one GIL). Every writer opens its own
``Store(url, index_writer=PostgresBackend(url))`` and commits documents of 20 chunks through
``Store.put_document``, exactly as an ingest worker does. Texts recombine SciFact sentences as
``bench/scale.py`` does; embeddings come from the ``hash:384`` embedder and MinHash fingerprints
are computed *before* the clock starts, so the figure is the store path alone (SQL, index
maintenance, commit). chunks/s is all chunks over the wall time from a common start barrier to
the last writer's end.

Breakdown, per writer and summed: time in each kind of statement (SQLAlchemy cursor events, and
the bulk ``COPY`` calls), the commit, and Python around them; and the cost of the indexes from
the same load with the HNSW index dropped (``no-hnsw``), the three GIN indexes dropped
(``no-gin``) or all four dropped (``bare``).

Writes bench/results/pg_writers.json (results of earlier ``--label`` runs are kept, so the code on
``main`` can be measured beside this branch with ``PYTHONPATH=/work/main/src``) and the table
between the ``bench/pg_writers.py`` markers in docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import machine_info, replace_between_markers

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "pg_writers.json"
DOC = ROOT / "docs" / "scale.md"
# The checkout's (or a worktree's) sibling ``shared`` folder (a built-in generator when absent).
_SHARED = [
    p for p in (ROOT.parent / "shared", ROOT.parents[1] / "shared") if (p / "data" / "scifact").exists()
]
CORPUS = (_SHARED[0] if _SHARED else ROOT.parent / "shared") / "data" / "scifact" / "corpus.jsonl"
CHUNKS_PER_DOC = 20
EMBEDDER = "hash:384"
TENANT = "default"
VARIANTS = {
    "full": (),
    "no-hnsw": ("fathom_search_chunks_embedding",),
    "no-gin": ("fathom_search_chunks_acl", "fathom_search_chunks_meta", "fathom_search_chunks_terms"),
    "bare": (
        "fathom_search_chunks_embedding",
        "fathom_search_chunks_acl",
        "fathom_search_chunks_meta",
        "fathom_search_chunks_terms",
    ),
}


def _kind(statement: str) -> str:
    """Which part of the write a SQL statement is."""
    s = " ".join(statement.split()).lower()
    if "fathom_search_chunks" in s and ("insert" in s or "copy" in s):
        return "index rows"
    if "fathom_search_terms" in s or "fathom_search_tenants" in s:
        return "bm25 statistics"
    if s.startswith(("insert into chunks", "copy chunks")) or "nextval('chunks" in s:
        return "chunk rows"
    if "changes" in s and ("insert" in s or "copy" in s or "nextval" in s):
        return "change log"
    if "fathom_search_meta" in s:
        return "index position"
    if "advisory" in s:
        return "locks"
    return "other sql"


def _documents(writer: int, count: int) -> list[tuple[str, list[Any]]]:
    """``count`` documents for one writer: (source, chunk drafts), embedded and fingerprinted."""
    import random

    from bench.scale import _sentences
    from fathom.embed import create_embedder
    from fathom.ingest.fingerprint import fingerprint
    from fathom.store.database import ChunkDraft

    sentences = _sentences(CORPUS)
    picker = random.Random(1000 + writer)
    embedder = create_embedder(EMBEDDER)
    out = []
    for number in range(count):
        texts = [" ".join(picker.choices(sentences, k=picker.randint(3, 6))) for _ in range(CHUNKS_PER_DOC)]
        vectors = embedder.embed_documents(texts)
        drafts, offset = [], 0
        for ordinal, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
            drafts.append(
                ChunkDraft(
                    ordinal=ordinal,
                    start=offset,
                    end=offset + len(text),
                    text=text,
                    heading_path=(f"Section {ordinal // 5 + 1}",),
                    token_count=len(text.split()),
                    content_hash=uuid.uuid4().hex,
                    embedding=np.asarray(vector, dtype=np.float32),
                    minhash=fingerprint(text),
                )
            )
            offset += len(text) + 2
        out.append((f"writer{writer}/doc{number:06d}", drafts))
    return out


def _writer(url: str, writer: int, count: int, barrier: Any, results: Any) -> None:
    from sqlalchemy import event

    from fathom.index.postgres import PostgresBackend
    from fathom.store.database import Store

    documents = _documents(writer, count)
    backend = PostgresBackend(url)
    store = Store(url, index_writer=backend)
    spent: dict[str, float] = defaultdict(float)
    started: dict[int, tuple[float, str]] = {}
    commit_at: list[float] = []

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        started[id(cursor)] = (time.perf_counter(), _kind(statement))

    def after(conn: Any, cursor: Any, *_: Any) -> None:
        begun, kind = started.pop(id(cursor))
        spent[kind] += time.perf_counter() - begun

    event.listen(store.engine, "before_cursor_execute", before)
    event.listen(store.engine, "after_cursor_execute", after)
    event.listen(store.engine, "commit", lambda conn: commit_at.append(time.perf_counter()))
    _time_copies(spent)
    barrier.wait()
    begun = time.perf_counter()
    for source, drafts in documents:
        put_started = time.perf_counter()
        store.put_document(
            tenant=TENANT,
            source=source,
            title=source,
            mime_type="text/plain",
            content_hash=uuid.uuid4().hex,
            text="\n\n".join(d.text for d in drafts),
            metadata={"writer": str(writer)},
            chunks=drafts,
            embedding_model=EMBEDDER,
        )
        done = time.perf_counter()
        spent["commit"] += done - commit_at[-1]
        spent["total"] += done - put_started
    spent["wall"] = time.perf_counter() - begun
    store.close()
    backend.close()
    results.put((writer, dict(spent)))


def _time_copies(spent: dict[str, float]) -> None:
    """Count the bulk COPY calls of this branch's write path too (absent on older code)."""
    try:
        from fathom.index import postgres_copy as bulk
    except ImportError:
        return
    original = bulk.copy_rows

    def timed(connection: Any, table: str, columns: Any, rows: Any) -> None:
        begun = time.perf_counter()
        original(connection, table, columns, rows)
        spent[
            "index rows" if table.startswith("fathom_search") else f"{table} rows".replace("chunks", "chunk")
        ] += time.perf_counter() - begun

    bulk.copy_rows = timed  # type: ignore[assignment]


def _prepare(server_url: str, variant: str) -> str:
    """A fresh database with the schema, one tenant partition, and ``variant``'s indexes dropped."""
    import psycopg
    from sqlalchemy import make_url

    from fathom.index.postgres import PostgresBackend
    from fathom.store.database import Store

    parsed = make_url(server_url)
    name = f"writers_{uuid.uuid4().hex[:12]}"
    admin: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**admin) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    url = parsed.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(**{**admin, "dbname": name}) as conn:  # type: ignore[arg-type]
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    backend = PostgresBackend(url)
    store = Store(url, index_writer=backend)
    # One document first, so the chunk table, the tenant's partition and its indexes exist.
    for source, drafts in _documents(999, 1):
        store.put_document(
            tenant=TENANT,
            source=source,
            title=source,
            mime_type="text/plain",
            content_hash="warm",
            text="warm",
            metadata={},
            chunks=drafts,
            embedding_model=EMBEDDER,
        )
    store.close()
    backend.close()
    with psycopg.connect(**{**admin, "dbname": name}) as conn:  # type: ignore[arg-type]
        for index in VARIANTS[variant]:
            conn.execute(f"DROP INDEX {index}")
    return url


def _drop(url: str) -> None:
    import psycopg
    from sqlalchemy import make_url

    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


def _check(url: str, expected: int) -> None:
    import psycopg
    from sqlalchemy import make_url

    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
    ) as conn:
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()
        indexed = conn.execute("SELECT count(*) FROM fathom_search_chunks").fetchone()
    assert chunks is not None and indexed is not None
    if not chunks[0] == indexed[0] == expected:
        raise SystemExit(f"lost writes: {chunks[0]} stored, {indexed[0]} indexed, {expected} expected")


def run_one(server_url: str, variant: str, writers: int, chunks: int) -> dict[str, Any]:
    url = _prepare(server_url, variant)
    try:
        per_writer = max(1, chunks // CHUNKS_PER_DOC // writers)
        context = mp.get_context("spawn")
        barrier = context.Barrier(writers + 1)
        results = context.Queue()
        processes = [
            context.Process(target=_writer, args=(url, w, per_writer, barrier, results))
            for w in range(writers)
        ]
        for process in processes:
            process.start()
        barrier.wait()
        begun = time.perf_counter()
        collected = [results.get(timeout=3600) for _ in processes]
        wall = time.perf_counter() - begun
        for process in processes:
            process.join()
        written = per_writer * writers * CHUNKS_PER_DOC
        _check(url, written + CHUNKS_PER_DOC)
    finally:
        _drop(url)
    parts: dict[str, float] = defaultdict(float)
    for _, spent in collected:
        for key, value in spent.items():
            parts[key] += value
    sql = sum(v for k, v in parts.items() if k not in {"commit", "total", "wall"})
    parts["python and driver"] = parts["total"] - sql - parts["commit"]
    return {
        "variant": variant,
        "writers": writers,
        "chunks": written,
        "wall_s": round(wall, 2),
        "chunks_per_s": round(written / wall, 1),
        # Seconds summed over writers, per 1,000 chunks: what one chunk costs, wherever it goes.
        "ms_per_chunk": {k: round(v * 1000 / written, 3) for k, v in sorted(parts.items()) if k != "wall"},
    }


def _server(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    from fathom.store import local_postgres

    server = local_postgres.running(args.pg_dir) or local_postgres.start(args.pg_dir)
    return server.url


def _table(payload: dict[str, Any]) -> str:
    rows = [
        "| code | indexes | writers | chunks/s | ms per chunk: index rows (COPY/INSERT) | chunk rows "
        "| change log | BM25 statistics | index position | other SQL and locks | commit | Python + driver |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, runs in payload["runs"].items():
        groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        for run in runs:
            groups[(run["variant"], run["writers"])].append(run)
        for same in groups.values():
            # The median run by throughput, and the spread of the repeats.
            same = sorted(same, key=lambda run: float(run["chunks_per_s"]))
            r = same[len(same) // 2]
            spread = (
                "" if len(same) == 1 else f" ({same[0]['chunks_per_s']:.0f}–{same[-1]['chunks_per_s']:.0f})"
            )
            ms = r["ms_per_chunk"]
            cells = [
                ms.get(k, 0.0)
                for k in ("index rows", "chunk rows", "change log", "bm25 statistics", "index position")
            ]
            cells.append(ms.get("other sql", 0.0) + ms.get("locks", 0.0))
            cells += [ms.get("commit", 0.0), ms.get("python and driver", 0.0)]
            rows.append(
                f"| {label} | {r['variant']} | {r['writers']} | {r['chunks_per_s']:.0f}{spread} | "
                + " | ".join(f"{c:.2f}" for c in cells)
                + " |"
            )
    m = payload["machine"]
    rows.append("")
    rows.append(
        f"{payload['chunks']} chunks per run (documents of {CHUNKS_PER_DOC}), median of the repeats "
        f"(their range in brackets), `{EMBEDDER}` embeddings "
        "computed before the clock starts; ms per chunk are summed over writers (time a chunk costs "
        f"wherever it is spent). Machine: {m['cores']} cores ({m['cpu']}), {m['ram_gib']} GiB, shared with "
        "other work (figures under load: compare rows of one run, not absolutes)."
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg-dir", type=Path, default=Path("/tmp/fathom-writers-pg"))
    parser.add_argument("--database-url", help="a PostgreSQL server (any database; fresh ones are created)")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--chunks", type=int, default=6000)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["full"])
    parser.add_argument("--label", default="this branch")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each setting (the table shows the median)"
    )
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument(
        "--append", action="store_true", help="add to the runs of --label (alternate two codes' runs)"
    )
    args = parser.parse_args()
    server_url = _server(args)
    payload: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    runs: list[dict[str, Any]] = []
    for _ in range(args.repeats):
        for variant in args.variants:
            for writers in args.writers:
                result = run_one(server_url, variant, writers, args.chunks)
                print(json.dumps(result), flush=True)
                runs.append(result)
    payload["runs"][args.label] = (payload["runs"].get(args.label, []) if args.append else []) + runs
    payload["chunks"] = args.chunks
    payload["machine"] = machine_info()
    payload["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    payload["load_average"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    table = _table(payload)
    print(table)
    if not args.no_docs:
        replace_between_markers(DOC, "bench/pg_writers.py", table)


if __name__ == "__main__":
    main()
