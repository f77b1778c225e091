"""How the search rows travel: multi-row INSERT (psycopg 3 executemany) against COPY, indexes aside.

    python -m bench.pg_copy [--pg-dir /tmp/fathom-writers-pg] [--repeats 15]

Writes 10 documents of 20 search rows (the postgres backend's columns: 60 term ids, a sparsevec,
a 384-d vector) per transaction into an unindexed table on a fresh database, each way in turn:
the statement the backend used before (``INSERT ... VALUES`` with casts, executemany), ``COPY``
with the driver adapting Python lists to arrays, and ``COPY`` with the term-id array sent as a
literal (what the backend does). Prints and writes bench/results/pg_copy.json (ms per row).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text

from bench.machine import machine_info
from bench.pg_server import create_database, drop_database, local_server_url
from fathom.index.postgres import _vector_literal
from fathom.index.postgres_copy import copy_rows

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["tenant", "chunk_id", "doc_id", "acl", "meta", "terms", "length", "bm25", "embedding"]
COLUMNS = (
    "tenant text, chunk_id bigint, doc_id text, acl text[], meta text[], terms integer[], length integer,"
    " bm25 sparsevec, embedding vector(384)"
)
INSERT = text(
    "INSERT INTO t (tenant, chunk_id, doc_id, acl, meta, terms, length, bm25, embedding)"
    " VALUES (:tenant, :chunk_id, :doc_id, CAST(:acl AS text[]), CAST(:meta AS text[]),"
    " CAST(:terms AS integer[]), :length, CAST(:bm25 AS sparsevec), CAST(:embedding AS vector))"
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg-dir", type=Path, default=Path("/tmp/fathom-writers-pg"))
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    url = create_database(local_server_url(args.pg_dir))
    engine = create_engine(url)
    rng = np.random.default_rng(0)
    rows: list[tuple[Any, ...]] = []
    for i in range(20):
        terms = sorted(rng.choice(10**8, 60, replace=False).tolist())
        bm25 = "{" + ",".join(f"{t}:0.5" for t in terms) + "}/1000000000"
        vector = _vector_literal(rng.standard_normal(384).astype(np.float32))
        rows.append(("default", i, "doc", ["*"], ["source=x"], terms, 60, bm25, vector))
    literal = [(*r[:5], "{" + ",".join(map(str, r[5])) + "}", *r[6:]) for r in rows]
    ways = ("executemany INSERT", "COPY, arrays adapted", "COPY, arrays as literals")
    timings: dict[str, list[float]] = {way: [] for way in ways}
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE t ({COLUMNS})"))
        for _ in range(args.repeats):
            for way in ways:
                with engine.begin() as conn:
                    started = time.perf_counter()
                    for _document in range(10):
                        if way == ways[0]:
                            conn.execute(INSERT, [dict(zip(NAMES, r, strict=True)) for r in rows])
                        else:
                            copy_rows(conn, "t", NAMES, rows if way == ways[1] else literal)
                    timings[way].append((time.perf_counter() - started) * 1000 / 200)
    finally:
        engine.dispose()
        drop_database(url)
    result = {
        way: {"median_ms_per_row": round(statistics.median(v), 3), "min": round(min(v), 3)}
        for way, v in timings.items()
    }
    out = ROOT / "bench" / "results" / "pg_copy.json"
    out.write_text(
        json.dumps({"machine": machine_info(), "repeats": args.repeats, "results": result}, indent=2) + "\n"
    )
    for way, row in result.items():
        print(f"{way}: {row['median_ms_per_row']} ms per row (median), {row['min']} (min)")


if __name__ == "__main__":
    main()
