"""`fathom compact` on PostgreSQL: retention applied, then VACUUM reclaims the deleted rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import make_url

from fathom import Fathom
from fathom.domain import TextDocument


def _dead_chunk_tuples(url: str, until: Callable[[int], bool]) -> int:
    """Dead tuples of ``chunks`` once ``until`` holds (statistics reach the view within a few seconds)."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    deadline = time.monotonic() + 15
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'chunks'"
            ).fetchone()
            dead = int(row[0]) if row else 0
            if until(dead) or time.monotonic() > deadline:
                return dead
            time.sleep(0.25)


def test_compact_vacuums_postgres(tmp_path: Path, pg_url: str) -> None:
    with Fathom(
        home=tmp_path / "home", embedder="hash:64", database_url=pg_url, index_backend="postgres"
    ) as fathom:
        fathom.ingest_texts(
            [
                TextDocument(source=f"d{n}", text=f"Document {n} about erasure and compaction.")
                for n in range(5)
            ]
        )
        for n in range(5):
            fathom.delete(f"d{n}")
        assert _dead_chunk_tuples(pg_url, lambda dead: dead >= 5) >= 5
        done = fathom.compact()
        assert done.store.dialect == "postgresql" and done.store.vacuumed and done.partitions == 0
        assert _dead_chunk_tuples(pg_url, lambda dead: dead == 0) == 0
