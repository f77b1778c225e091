"""Catch-up after a small ingest reads only the change log's tail, never the whole store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import event, text

from fathom import Fathom
from fathom.index.journal import read_records
from fathom.ingest.fingerprint import fingerprint
from fathom.store.database import ChunkDraft

DIM = 64


def _put(fathom: Fathom, number: int, chunks: int, rng: np.random.Generator) -> None:
    vectors = rng.standard_normal((chunks, DIM)).astype(np.float32)
    texts = [f"passage {number} {i} about harbours and lanterns" for i in range(chunks)]
    drafts = [
        ChunkDraft(
            ordinal=i,
            start=0,
            end=len(t),
            text=t,
            heading_path=(),
            token_count=8,
            content_hash=f"{number}-{i}",
            embedding=v / np.linalg.norm(v),
            minhash=fingerprint(t),
        )
        for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
    ]
    fathom.store.put_document(
        tenant="default",
        source=f"mem://{number}",
        title=f"doc {number}",
        mime_type="text/plain",
        content_hash=str(number),
        text=texts[0],
        metadata={},
        chunks=drafts,
        embedding_model=f"hash:{DIM}",
    )


def test_catch_up_after_a_small_ingest_reads_only_the_new_rows(tmp_path: Path):
    rng = np.random.default_rng(0)
    with Fathom(home=tmp_path / "home", embedder=f"hash:{DIM}") as fathom:
        for number in range(60):
            _put(fathom, number, 50, rng)  # 3,000 chunks
        fathom.indexer.catch_up()
        before = fathom.store.last_sequence()
        _put(fathom, 1000, 4, rng)
        with fathom.store.connection() as conn:
            new_ids = {
                int(i)
                for i in conn.execute(
                    text(
                        "SELECT id FROM chunks WHERE doc_id = (SELECT id FROM documents WHERE source = 'mem://1000')"
                    )
                ).scalars()
            }

        statements: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
            statements.append((statement, parameters))

        event.listen(fathom.store.engine, "before_cursor_execute", record)
        try:
            assert fathom.indexer.catch_up() == 4
        finally:
            event.remove(fathom.store.engine, "before_cursor_execute", record)

        # Every statement catch-up ran finds its rows through an index: no table scan.
        reads = [(s, p) for s, p in statements if s.lstrip().upper().startswith("SELECT")]
        assert any("changes" in s for s, _ in reads) and any("chunks" in s for s, _ in reads)
        raw = fathom.store.engine.raw_connection()
        try:
            cursor = raw.cursor()
            for statement, parameters in reads:
                plan = cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
                scans = [row[-1] for row in plan if str(row[-1]).startswith("SCAN")]
                assert not scans, (statement, plan)
        finally:
            raw.close()
        # The change-log read starts after the indexes' position.
        assert any(before in (p if isinstance(p, tuple | list) else ()) for s, p in reads if "changes" in s)

        # The dense index journaled exactly the new chunks; both indexes hold everything.
        records = list(read_records(next((tmp_path / "home" / "index").glob("tenants/*/dense.*.journal"))))
        assert {int(k) for k in records[-1][0].keys} == new_ids
        assert fathom.backend.sizes() == {"lexical": 3004, "dense": 3004}
