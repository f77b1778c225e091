"""Parallel writers on PostgreSQL with the postgres backend: they overlap, and lose nothing.

What a user notices: several ingest workers sharing one database commit at the same time instead
of queueing behind one lock; whatever they do concurrently (new documents, replacements,
deletions), every committed document is stored once and searchable, and BM25's statistics equal
what the chunks hold; a worker killed in the middle of a write leaves nothing of it behind and
blocks nobody. A store whose index catches up from the change log (the embedded backend) still
commits one writer at a time, which is what keeps catch-up from skipping a change.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from sqlalchemy import Connection, make_url

from fathom import Fathom
from fathom.index.backend import SearchRequest
from fathom.index.postgres import PostgresBackend
from fathom.index.types import IndexableChunk, IndexFilter
from fathom.store.database import ChunkDraft, Store

pytestmark = [pytest.mark.integration]

TENANT = "default"
DIM = 16
ROOT = Path(__file__).resolve().parents[2]


def _drafts(words: Sequence[str], seed: int) -> list[ChunkDraft]:
    rng = np.random.default_rng(seed)
    out, offset = [], 0
    for ordinal, text in enumerate(words):
        vector = rng.standard_normal(DIM).astype(np.float32)
        out.append(
            ChunkDraft(
                ordinal=ordinal,
                start=offset,
                end=offset + len(text),
                text=text,
                heading_path=(),
                token_count=len(text.split()),
                content_hash=f"{seed}-{ordinal}",
                embedding=vector / np.linalg.norm(vector),
                minhash=np.zeros(64, dtype=np.uint64),
            )
        )
        offset += len(text) + 2
    return out


def _put(store: Store, source: str, marker: str, seed: int) -> str:
    texts = [f"{marker} common words about rivers part {i}" for i in range(5)]
    doc_id, _ = store.put_document(
        tenant=TENANT,
        source=source,
        title=source,
        mime_type="text/plain",
        content_hash=f"{marker}-{seed}",
        text="\n\n".join(texts),
        metadata={},
        chunks=_drafts(texts, seed),
        embedding_model=f"hash:{DIM}",
    )
    return doc_id


def _store(url: str) -> tuple[Store, PostgresBackend]:
    backend = PostgresBackend(url)
    return Store(url, index_writer=backend), backend


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
    ) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def _assert_consistent(url: str) -> None:
    """Store, change log, search rows and BM25 statistics agree with each other."""
    stored = {row[0] for row in _query(url, "SELECT id FROM chunks")}
    indexed = [row[0] for row in _query(url, "SELECT chunk_id FROM fathom_search_chunks")]
    assert len(indexed) == len(set(indexed))
    assert set(indexed) == stored
    # The last change of every chunk still stored is its "add"; of every removed one, "remove".
    last = dict(
        _query(url, "SELECT DISTINCT ON (chunk_id) chunk_id, op FROM changes ORDER BY chunk_id, seq DESC")
    )
    assert {cid for cid, op in last.items() if op == "add"} == stored
    seqs = [row[0] for row in _query(url, "SELECT seq FROM changes")]
    assert len(seqs) == len(set(seqs))
    held = dict(
        _query(url, "SELECT term, count(*) FROM fathom_search_chunks, unnest(terms) AS term GROUP BY term")
    )
    counted = dict(
        _query(url, "SELECT term, sum(df) FROM fathom_search_terms GROUP BY term HAVING sum(df) <> 0")
    )
    assert counted == held
    ((chunks,),) = _query(url, "SELECT coalesce(sum(chunks), 0) FROM fathom_search_tenants")
    assert chunks == len(stored)


class _PausingBackend(PostgresBackend):
    """Stops inside the store's transaction, after writing its rows and before committing."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.inside = threading.Event()
        self.release = threading.Event()

    def _write(self, conn: Connection, removed: Mapping[int, str], added: Sequence[IndexableChunk]) -> None:
        super()._write(conn, removed, added)
        self.inside.set()
        assert self.release.wait(60)


@pytest.fixture
def url(pg_url: str) -> Iterator[str]:
    store, backend = _store(pg_url)  # the schema and the search tables, once
    _put(store, "first.txt", "firstdocument", 0)
    store.close()
    backend.close()
    yield pg_url


def _word(writer: int, number: int) -> str:
    """A word the analyser keeps whole and no other document holds."""
    return "marker" + chr(ord("a") + writer) + chr(ord("a") + number)


def test_two_writers_commit_while_a_third_holds_its_transaction_open(url: str, tmp_path: Path):
    paused_backend = _PausingBackend(url)
    paused = Store(url, index_writer=paused_backend)
    other, other_backend = _store(url)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(_put, paused, "held.txt", "heldopen", 1)
        assert paused_backend.inside.wait(30)
        try:
            # With one global writer lock these would wait for "held.txt" to commit.
            for number in range(2):
                finished = ThreadPoolExecutor(1).submit(
                    _put, other, f"meanwhile{number}.txt", f"quick{number}", 2
                )
                finished.result(timeout=20)
            assert not held.done()
        finally:
            paused_backend.release.set()
        held.result(timeout=30)
    with Fathom(
        home=tmp_path / "home", embedder=f"hash:{DIM}", database_url=url, index_backend="postgres"
    ) as fathom:
        status = fathom.status()
        assert status.index_positions == {"postgres": status.last_sequence}
    for store, backend in ((paused, paused_backend), (other, other_backend)):
        store.close()
        backend.close()
    _assert_consistent(url)


def test_parallel_writers_lose_nothing_and_everything_is_searchable(url: str, tmp_path: Path):
    writers, documents = 4, 12

    def work(writer: int) -> None:
        store, backend = _store(url)
        try:
            for number in range(documents):
                source = f"w{writer}/doc{number}.txt"
                _put(store, source, _word(writer, number), writer * 1000 + number)
                if number % 3 == 0:  # replace it: its old chunks leave the index and statistics
                    _put(store, source, _word(writer, number), writer * 1000 + number + 500)
                if number % 4 == 1:
                    doc = store.find_document(TENANT, source)
                    assert doc is not None and store.delete_document(TENANT, doc.id)
        finally:
            store.close()
            backend.close()

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(work, range(writers)))
    _assert_consistent(url)
    kept = {(w, n) for w in range(writers) for n in range(documents) if n % 4 != 1}
    with Fathom(
        home=tmp_path / "home", embedder=f"hash:{DIM}", database_url=url, index_backend="postgres"
    ) as fathom:
        assert fathom.status().documents == len(kept) + 1
        assert fathom.status().index_positions == {"postgres": fathom.status().last_sequence}
        everyone = IndexFilter(tenant=TENANT, acl_tokens=None)
        for writer, number in sorted(kept):
            # BM25 finds exactly the document's five chunks (the only ones holding its word).
            request = SearchRequest(text=_word(writer, number), vector=None, where=everyone, depth=10)
            found = [chunk_id for chunk_id, _ in fathom.backend.search(request).lexical]
            chunks = fathom.store.chunks_by_id(found, everyone)
            assert len(found) == 5 and {c.source for c in chunks.values()} == {f"w{writer}/doc{number}.txt"}


_KILLED_WRITER = """
import sys, time
from tests.index import test_postgres_writers as t
from fathom.index.postgres import PostgresBackend

class Stuck(PostgresBackend):
    def _write(self, conn, removed, added):
        super()._write(conn, removed, added)
        print("inside", flush=True)
        time.sleep(600)

from fathom.store.database import Store
url = sys.argv[1]
store = Store(url, index_writer=Stuck(url))
t._put(store, "first.txt", "replacedbykilled", 7)
"""


def test_a_writer_killed_mid_transaction_leaves_a_consistent_store(url: str, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, url], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "inside"
        # Another writer commits while the doomed one holds its rows, slot and row locks.
        store, backend = _store(url)
        started = time.perf_counter()
        _put(store, "survivor.txt", "survivorword", 8)
        assert time.perf_counter() - started < 20
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()
    # The server rolls the killed transaction back; its locks go with it.
    _put(store, "after.txt", "afterword", 9)
    store.close()
    backend.close()
    _assert_consistent(url)
    with Fathom(
        home=tmp_path / "home", embedder=f"hash:{DIM}", database_url=url, index_backend="postgres"
    ) as fathom:
        assert sorted(d.source for d in fathom.documents()) == ["after.txt", "first.txt", "survivor.txt"]
        assert fathom.search("firstdocument", k=1)[0].source == "first.txt"
        assert all("replacedbykilled" not in hit.text for hit in fathom.search("replacedbykilled", k=5))


def test_catch_up_fed_writers_still_commit_one_at_a_time_and_the_stable_head_waits(url: str):
    """Without the index in the transaction (the embedded backend on PostgreSQL) writers queue,
    and the head catch-up reads up to waits for every writer in flight."""
    paused_backend = _PausingBackend(url)
    paused = Store(url, index_writer=paused_backend)
    plain = Store(url)
    with ThreadPoolExecutor(3) as pool:
        held = pool.submit(_put, paused, "held.txt", "heldopen", 1)
        assert paused_backend.inside.wait(30)
        queued = pool.submit(_put, plain, "queued.txt", "queuedword", 2)
        # The queued writer reaches the lock first, so it is one the head must wait for (without
        # this pause the head could queue ahead of it and rightly return the held writer's end).
        time.sleep(0.5)
        head = pool.submit(plain.stable_sequence)
        time.sleep(1.5)
        assert not queued.done() and not head.done()
        paused_backend.release.set()
        held.result(timeout=30)
        queued.result(timeout=30)
        # The head it returned covers both writers that were ahead of it.
        assert head.result(timeout=30) == plain.last_sequence()
    for store in (paused, plain):
        store.close()
    paused_backend.close()
