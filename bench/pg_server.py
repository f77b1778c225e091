"""Bench helpers for a PostgreSQL server: fresh databases, disk per relation, memory of the server.

The memory figure is the proportional set size (PSS) summed over the postmaster and its children,
so shared buffers mapped by every backend count once; it needs the server on this machine and
permission to read its processes' ``smaps`` (root, or the user the server runs as).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url

__all__ = ["create_database", "database_sizes", "drop_database", "local_server_url", "server_memory_mb"]


def _connect(url: str, database: str | None = None, **options: Any) -> psycopg.Connection[Any]:
    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        dbname=database or parsed.database,
        **options,
    )


def local_server_url(directory: Path) -> str:
    """The URL of the ``fathom pg start`` server in ``directory`` (started when not running)."""
    from fathom.store import local_postgres

    server = local_postgres.running(directory) or local_postgres.start(directory)
    return server.url


def create_database(server_url: str, name: str | None = None) -> str:
    """A new database with pgvector (replacing one of the same name); its URL."""
    name = name or f"bench_{uuid.uuid4().hex[:12]}"
    with _connect(server_url, "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    with _connect(server_url, name, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    with _connect(url, "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def database_sizes(url: str) -> dict[str, float]:
    """MB on disk: the whole database, the store's tables and the search tables (with indexes)."""
    with _connect(url) as conn:
        database = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        ).fetchall()
        search_indexes = conn.execute(
            "SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_am a ON a.oid = c.relam"
            " WHERE a.amname = 'hnsw' AND left(c.relname, 14) = 'fathom_search_'"
        ).fetchone()
    assert database is not None and search_indexes is not None
    mb = 2**20
    sizes = {name: float(size) / mb for name, size in rows}
    search = sum(size for name, size in sizes.items() if name.startswith("fathom_search_"))
    store = sum(size for name, size in sizes.items() if not name.startswith("fathom_search_"))
    return {
        "database_mb": round(float(database[0]) / mb, 1),
        "store_tables_mb": round(store, 1),
        "search_tables_mb": round(search, 1),
        "hnsw_mb": round(float(search_indexes[0]) / mb, 1),
        "chunks_table_mb": round(sizes.get("chunks", 0.0), 1),
    }


def server_memory_mb(url: str) -> dict[str, float] | None:
    """PSS and RSS (MB) of the server's processes, or None when they cannot be read here."""
    import psutil

    with _connect(url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    try:
        pid = int((Path(row[0]) / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
        postmaster = psutil.Process(pid)
        processes = [postmaster, *postmaster.children(recursive=True)]
    except (OSError, ValueError, psutil.Error):
        return None
    pss = rss = 0
    for process in processes:
        try:
            info = process.memory_full_info()
        except psutil.NoSuchProcess:  # a backend that ended meanwhile
            continue
        except psutil.Error:
            return None
        pss += info.pss
        rss += info.rss
    return {"pss_mb": round(pss / 2**20, 1), "rss_sum_mb": round(rss / 2**20, 1), "processes": len(processes)}
