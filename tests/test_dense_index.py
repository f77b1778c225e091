"""The dense index persists incrementally (snapshot + journal) and filters without scanning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fathom.index.backend import SearchRequest
from fathom.index.dense import UsearchIndex
from fathom.index.embedded import EmbeddedBackend
from fathom.index.journal import read_records
from fathom.index.lexical import TantivyIndex
from fathom.index.types import IndexableChunk, IndexFilter

DIM = 16


def _chunks(ids: range | list[int], seed: int = 0, shard_of=lambda i: "a") -> list[IndexableChunk]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        IndexableChunk(
            chunk_id=i,
            doc_id=f"d{i}",
            tenant_id="t",
            title="",
            heading_path=(),
            text=f"word{i % 7} common",
            acl_tokens=("*",),
            metadata_tokens=(f"shard={shard_of(i)}",),
            embedding=v,
        )
        for i, v in zip(ids, vectors, strict=True)
    ]


def _files(directory: Path, suffix: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(suffix))


def _best(chunks: list[IndexableChunk], query: np.ndarray, k: int) -> list[int]:
    scores = {c.chunk_id: float(c.embedding @ query) for c in chunks}
    return sorted(scores, key=lambda i: -scores[i])[:k]


WHERE = IndexFilter(tenant="t", acl_tokens=None)


def test_batches_survive_reopen_from_the_journal_without_rewriting_the_snapshot(tmp_path: Path):
    path = tmp_path / "dense.usearch"
    index = UsearchIndex(path, journal_limit=500)
    first = _chunks(range(1, 401))
    index.apply([], first, sequence=400)  # 400 < 500: stays in the journal
    assert _files(tmp_path, ".usearch") == []
    index.apply([5, 6], [], sequence=402)
    replaced = _chunks([7], seed=99)
    index.apply([7], replaced, sequence=403)

    reopened = UsearchIndex(path, journal_limit=500)
    expected = set(range(1, 401)) - {5, 6}
    assert reopened.chunk_ids() == expected
    assert reopened.size() == len(expected)
    assert reopened.applied_sequence() == 403
    hits = reopened.search(replaced[0].embedding, 1, None)
    assert hits[0][0] == 7 and hits[0][1] == pytest.approx(1.0, abs=1e-5)


def test_compaction_writes_a_new_generation_and_keeps_every_change(tmp_path: Path):
    path = tmp_path / "dense.usearch"
    index = UsearchIndex(path, journal_limit=300, exact_below=0)  # HNSW even when small
    chunks = _chunks(range(1, 1001))
    for start in range(0, 1000, 250):
        index.apply([], chunks[start : start + 250], sequence=start + 250)
    # 1000 adds with a limit of 300: compacted at 500 and 1000, so one snapshot, empty journal.
    assert _files(tmp_path, ".usearch") == ["dense.00000002.usearch"]
    assert _files(tmp_path, ".journal") == ["dense.00000002.journal"]
    assert (tmp_path / "dense.00000002.journal").stat().st_size == 0

    # Removing from the snapshot and re-adding goes through tombstones and the delta.
    removed = list(range(1, 51))
    readded = _chunks([10], seed=7)
    index.apply(removed, readded, sequence=1100)
    reopened = UsearchIndex(path, journal_limit=300, exact_below=0)
    assert reopened.chunk_ids() == (set(range(51, 1001)) | {10})
    for chunk in chunks[100:110]:
        assert reopened.search(chunk.embedding, 1, None)[0][0] == chunk.chunk_id
    assert reopened.search(readded[0].embedding, 1, None)[0][0] == 10
    assert all(hit[0] not in removed[1:] for hit in reopened.search(chunks[1].embedding, 20, None))


def test_a_torn_journal_tail_is_ignored_then_cut_off(tmp_path: Path):
    path = tmp_path / "dense.usearch"
    index = UsearchIndex(path, journal_limit=10_000)
    index.apply([], _chunks(range(1, 101)), sequence=100)
    journal = tmp_path / "dense.00000000.journal"
    good_size = journal.stat().st_size
    index.apply([], _chunks(range(101, 201), seed=1), sequence=200)
    # A process killed mid-append: half of the second record reached the disk.
    with journal.open("r+b") as handle:
        handle.truncate(good_size + (journal.stat().st_size - good_size) // 2)
    (tmp_path / "dense.position").write_text('{"sequence": 100}')

    reopened = UsearchIndex(path, journal_limit=10_000)
    assert reopened.chunk_ids() == set(range(1, 101))
    # Catch-up replays the lost batch: the torn bytes are cut before the new record.
    reopened.apply([], _chunks(range(101, 201), seed=1), sequence=200)
    assert [r.sequence for r, _ in read_records(journal)] == [100, 200]
    assert UsearchIndex(path).chunk_ids() == set(range(1, 201))


def test_a_corrupt_record_stops_replay_at_the_last_good_one(tmp_path: Path):
    path = tmp_path / "dense.usearch"
    index = UsearchIndex(path, journal_limit=10_000)
    index.apply([], _chunks(range(1, 11)), sequence=10)
    index.apply([], _chunks(range(11, 21), seed=1), sequence=20)
    journal = tmp_path / "dense.00000000.journal"
    data = bytearray(journal.read_bytes())
    data[-5] ^= 0xFF  # flip a byte inside the second record's vectors
    journal.write_bytes(bytes(data))
    assert UsearchIndex(path).chunk_ids() == set(range(1, 11))


def test_another_process_sees_batches_and_compactions(tmp_path: Path):
    path = tmp_path / "dense.usearch"
    writer = UsearchIndex(path, journal_limit=150)
    reader = UsearchIndex(path, journal_limit=150)
    writer.apply([], _chunks(range(1, 101)), sequence=100)
    reader.refresh()
    assert reader.size() == 100
    writer.apply([], _chunks(range(101, 201), seed=1), sequence=200)  # compacts
    reader.refresh()
    assert reader.chunk_ids() == set(range(1, 201))


def test_filtered_search_returns_only_allowed_chunks_on_every_path(tmp_path: Path):
    """Small filters are ranked exactly, large ones by checking HNSW candidates."""
    shards = {"tiny": lambda i: i % 500 == 0, "half": lambda i: i % 2 == 0}
    chunks = _chunks(
        range(1, 3001), shard_of=lambda i: "tiny" if i % 500 == 0 else ("half" if i % 2 == 0 else "rest")
    )
    lexical = TantivyIndex(tmp_path / "lexical")
    dense = UsearchIndex(tmp_path / "dense.usearch", exact_below=0, journal_limit=1000)
    lexical.apply([], chunks, sequence=3000)
    dense.apply([], chunks, sequence=3000)
    rng = np.random.default_rng(5)
    for _ in range(5):
        query = rng.standard_normal(DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        for shard, member in shards.items():
            where = IndexFilter(tenant="t", acl_tokens=None, metadata=(f"shard={shard}",))
            hits = dense.search(query, 5, lexical.allowed(where))
            pool = [c for c in chunks if c.metadata_tokens[0] == f"shard={shard}"]
            assert all(member(chunk_id) for chunk_id, _ in hits)
            expected = _best(pool, query, 5)
            if shard == "tiny":
                assert [chunk_id for chunk_id, _ in hits] == expected  # exact
            else:
                assert len(set(expected) & {chunk_id for chunk_id, _ in hits}) >= 4  # HNSW recall
        everything = dense.search(query, 5, None)
        assert len(set(_best(chunks, query, 5)) & {chunk_id for chunk_id, _ in everything}) >= 4
        assert dense.search(query, 5, lexical.allowed(IndexFilter(tenant="other"))) == []


def test_a_writer_keeps_complete_records_a_killed_writer_left_unpositioned(tmp_path: Path):
    """A reader may already have applied them, so they must stay where they are."""
    path = tmp_path / "dense.usearch"
    opened_before = UsearchIndex(path)
    killed = UsearchIndex(path)
    killed.apply([], _chunks(range(1, 51)), sequence=50)
    (tmp_path / "dense.position").write_text('{"sequence": 0}')  # killed before its position
    reader = UsearchIndex(path)
    assert reader.size() == 50
    opened_before.apply([], _chunks(range(51, 101), seed=1), sequence=100)
    reader.refresh()
    assert reader.chunk_ids() == set(range(1, 101))
    assert [r.sequence for r, _ in read_records(tmp_path / "dense.00000000.journal")] == [50, 100]


def test_a_tenant_never_sees_another_tenants_nearest_vectors(tmp_path: Path):
    ours = _chunks(range(1, 1501))
    theirs = [
        IndexableChunk(
            **{**{f: getattr(c, f) for f in c.__slots__}, "tenant_id": "u", "chunk_id": c.chunk_id + 10_000}
        )
        for c in _chunks(range(1, 1501))  # the same vectors, so theirs tie with ours
    ]
    backend = EmbeddedBackend(tmp_path / "index", exact_below=0)
    backend.apply({}, ours + theirs, sequence=1)
    for where in (WHERE, IndexFilter(tenant="t", acl_tokens=("*",))):
        lexical_hits = backend.search(SearchRequest("common", None, where, 100)).lexical
        assert len(lexical_hits) == 100 and all(chunk_id < 10_000 for chunk_id, _ in lexical_hits)
        for chunk in ours[:20]:
            hits = backend.search(SearchRequest("", chunk.embedding, where, 10)).dense
            assert hits and all(chunk_id < 10_000 for chunk_id, _ in hits)
            assert hits[0][0] == chunk.chunk_id


def test_an_admin_query_ranks_like_the_filtered_query_of_a_reader_who_sees_everything(tmp_path: Path):
    """An admin's query skips the filter clause (every chunk of the tenant's index passes)."""
    lexical = TantivyIndex(tmp_path / "alone")
    lexical.apply([], _chunks(range(1, 1501)), sequence=1)
    via_filter = IndexFilter(tenant="t", acl_tokens=("*",))
    assert lexical.search("word3 common", 20, WHERE) == lexical.search("word3 common", 20, via_filter)


def test_the_newest_generation_wins_and_older_ones_are_swept(tmp_path: Path):
    """A crash between writing a snapshot and deleting the old one leaves both on disk."""
    path = tmp_path / "dense.usearch"
    index = UsearchIndex(path, journal_limit=100)
    index.apply([], _chunks(range(1, 101)), sequence=100)  # compacts into generation 1
    (tmp_path / "dense.00000000.usearch").write_bytes(b"left by a crash")
    (tmp_path / "dense.00000000.journal").write_bytes(b"left by a crash")
    assert UsearchIndex(path).chunk_ids() == set(range(1, 101))
    index.apply([], _chunks(range(101, 201), seed=1), sequence=200)  # generation 2
    assert _files(tmp_path, ".usearch") == ["dense.00000002.usearch"]
    assert _files(tmp_path, ".journal") == ["dense.00000002.journal"]
    assert UsearchIndex(path).chunk_ids() == set(range(1, 201))
