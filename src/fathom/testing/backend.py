"""The conformance suite every search backend passes.

Subclass :class:`SearchBackendConformance` in a test module and provide one fixture,
``open_backend``: a callable that opens the backend stored under a name (the same name reopens the
same data, a new name starts empty)::

    class TestMyBackend(SearchBackendConformance):
        @pytest.fixture
        def open_backend(self, tmp_path):
            return lambda name="main": MyBackend(tmp_path / name)

Every test states a promise a user relies on: nobody sees another tenant's or an unreadable
chunk, filters apply before ranking, deletes are immediate, replays and reopens lose nothing,
rankings do not depend on other tenants, and approximate dense search finds the true neighbours.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pytest

from fathom.domain import Principal
from fathom.index.backend import Candidates, SearchBackend, SearchRequest
from fathom.index.types import IndexableChunk, IndexFilter, ScoredId
from fathom.index.vocabulary import document_acl_tokens, filter_for, metadata_tokens

__all__ = ["OpenBackend", "SearchBackendConformance", "make_chunk"]

OpenBackend = Callable[..., SearchBackend]

DIM = 32


def _unit(vector: np.ndarray) -> np.ndarray:
    unit: np.ndarray = (vector / np.linalg.norm(vector)).astype(np.float32)
    return unit


def make_chunk(
    chunk_id: int,
    text: str,
    vector: np.ndarray,
    *,
    tenant: str = "acme",
    users: Sequence[str] = (),
    groups: Sequence[str] = (),
    metadata: dict[str, str] | None = None,
    doc_id: str | None = None,
) -> IndexableChunk:
    """A chunk as the store hands it to backends, with tokens from the shared vocabulary."""
    doc = doc_id or f"doc{chunk_id}"
    return IndexableChunk(
        chunk_id=chunk_id,
        doc_id=doc,
        tenant_id=tenant,
        title=f"Title {doc}",
        heading_path=("Section",),
        text=text,
        acl_tokens=document_acl_tokens(users, groups),
        metadata_tokens=metadata_tokens(f"{doc}.md", "text/markdown", metadata or {}),
        embedding=_unit(vector),
    )


def _vectors(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    unit: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


def _ids(found: list[ScoredId]) -> list[int]:
    return [chunk_id for chunk_id, _ in found]


def _search(
    backend: SearchBackend, where: IndexFilter, text: str, vector: np.ndarray | None, depth: int = 10
) -> Candidates:
    return backend.search(SearchRequest(text=text, vector=vector, where=where, depth=depth))


def _admin(tenant: str = "acme") -> IndexFilter:
    return filter_for(Principal(tenant=tenant, admin=True))


class SearchBackendConformance:
    """What every backend promises (see the module docstring). Provide ``open_backend``."""

    @pytest.fixture
    def open_backend(self) -> OpenBackend:  # pragma: no cover - subclasses provide it
        raise NotImplementedError("a backend's test class provides the open_backend fixture")

    @pytest.fixture
    def backend(self, open_backend: OpenBackend) -> Iterator[SearchBackend]:
        backend = open_backend()
        yield backend
        backend.close()

    # -- isolation and filters ---------------------------------------------------------

    def test_tenants_are_isolated_even_with_the_same_user_and_group_names(
        self, backend: SearchBackend
    ) -> None:
        vectors = _vectors(40, seed=1)
        chunks = []
        for i in range(40):
            for offset, tenant in ((0, "acme"), (1000, "globex")):  # same text and vector in both
                chunks.append(
                    make_chunk(
                        offset + i + 1,
                        f"quarterly revenue report number {i}",
                        vectors[i],
                        tenant=tenant,
                        users=("alice",) if i % 2 else (),
                        groups=("eng",) if i % 3 == 0 else (),
                    )
                )
        backend.apply({}, chunks, 1)
        for tenant, own in (("acme", range(1, 41)), ("globex", range(1001, 1041))):
            for principal in (
                Principal(tenant=tenant, admin=True),
                Principal(tenant=tenant, user="alice", groups=("eng",)),
                Principal(tenant=tenant, user="bob"),
            ):
                for i in (0, 1, 3, 6):
                    found = _search(backend, filter_for(principal), "quarterly revenue", vectors[i], depth=50)
                    assert found.lexical and found.dense
                    assert set(_ids(found.lexical)) <= set(own), "lexical: another tenant's chunk"
                    assert set(_ids(found.dense)) <= set(own), "dense: another tenant's chunk"

    def test_acl_filters_apply_before_ranking(self, backend: SearchBackend) -> None:
        """k results for a reader even when 99% of the best candidates are hidden from it."""
        vectors = _vectors(1000, seed=2)
        chunks = [
            make_chunk(
                i + 1,
                "incident postmortem database failover" + (" failover" * (i % 5)),
                vectors[i],
                groups=() if i % 100 == 0 else ("secret",),
            )
            for i in range(1000)
        ]
        backend.apply({}, chunks, 1)
        visible = {c.chunk_id for c in chunks if c.acl_tokens == ("*",)}
        reader = filter_for(Principal(tenant="acme", user="carol"))
        query = _unit(vectors[1] + 0.01)  # nearest to a hidden chunk
        found = _search(backend, reader, "database failover", query, depth=10)
        assert len(found.lexical) == 10 and set(_ids(found.lexical)) <= visible
        assert len(found.dense) == 10 and set(_ids(found.dense)) <= visible
        insider = filter_for(Principal(tenant="acme", user="dave", groups=("secret",)))
        assert 2 in _ids(_search(backend, insider, "database failover", query, depth=10).dense)

    def test_metadata_filters_match_every_term(self, backend: SearchBackend) -> None:
        vectors = _vectors(300, seed=3)
        chunks = [
            make_chunk(
                i + 1,
                f"release notes version {i}",
                vectors[i],
                metadata={"team": "core" if i % 2 else "web", "year": str(2020 + i % 3)},
            )
            for i in range(300)
        ]
        backend.apply({}, chunks, 1)
        principal = Principal(tenant="acme", user="erin")
        for filters in ({"team": "core"}, {"team": "web", "year": "2021"}, {"team": "nobody"}):
            where = filter_for(principal, filters)
            wanted = {c.chunk_id for c in chunks if set(where.metadata) <= set(c.metadata_tokens)}
            found = _search(backend, where, "release notes", vectors[7], depth=20)
            assert set(_ids(found.lexical)) <= wanted and set(_ids(found.dense)) <= wanted
            assert len(found.dense) == min(20, len(wanted))

    # -- writes ------------------------------------------------------------------------

    def test_deletes_are_invisible_as_soon_as_apply_returns(self, backend: SearchBackend) -> None:
        vectors = _vectors(50, seed=4)
        chunks = [make_chunk(i + 1, f"vacation policy paragraph {i}", vectors[i]) for i in range(50)]
        backend.apply({}, chunks, 1)
        backend.apply({7: "acme", 8: "acme"}, [], 2)
        found = _search(backend, _admin(), "vacation policy", vectors[6], depth=50)
        assert 7 not in _ids(found.lexical) + _ids(found.dense)
        assert 8 not in _ids(found.lexical) + _ids(found.dense)
        assert backend.applied_sequence() == 2
        assert backend.chunk_ids() == set(range(1, 51)) - {7, 8}

    def test_replaying_a_batch_is_idempotent(self, backend: SearchBackend) -> None:
        vectors = _vectors(60, seed=5)
        first = [make_chunk(i + 1, f"onboarding checklist item {i}", vectors[i]) for i in range(60)]
        backend.apply({}, first, 1)
        replaced = make_chunk(61, "onboarding checklist item replaced", vectors[3])
        batch: dict[int, str] = {4: "acme", 61: "acme"}
        for _ in range(3):  # a crash before the position was recorded replays the same batch
            backend.apply(batch, [replaced], 2)
        assert backend.size() == 60
        assert backend.chunk_ids() == (set(range(1, 61)) - {4}) | {61}
        found = _search(backend, _admin(), "onboarding checklist replaced", vectors[3], depth=60)
        assert _ids(found.lexical).count(61) == 1 and _ids(found.dense).count(61) == 1

    def test_the_position_and_data_survive_a_reopen(self, open_backend: OpenBackend) -> None:
        vectors = _vectors(30, seed=6)
        backend = open_backend("durable")
        backend.apply({}, [make_chunk(i + 1, f"expense report {i}", vectors[i]) for i in range(30)], 5)
        backend.apply({3: "acme"}, [], 9)
        before = _search(backend, _admin(), "expense report", vectors[10], depth=5)
        backend.close()
        reopened = open_backend("durable")
        try:
            assert reopened.applied_sequence() == 9
            assert reopened.chunk_ids() == set(range(1, 31)) - {3}
            after = _search(reopened, _admin(), "expense report", vectors[10], depth=5)
            assert _ids(after.lexical) == _ids(before.lexical) and _ids(after.dense) == _ids(before.dense)
        finally:
            reopened.close()

    def test_a_rebuild_equals_a_catch_up(self, open_backend: OpenBackend) -> None:
        vectors = _vectors(120, seed=7)
        chunks = {
            i + 1: make_chunk(
                i + 1, f"security review finding {i % 17} severity", vectors[i], users=("u",) * (i % 2)
            )
            for i in range(120)
        }
        caught_up = open_backend("caught_up")
        rebuilt = open_backend("rebuilt")
        try:
            # Incremental history: three batches with removals and replacements.
            caught_up.apply({}, [chunks[i] for i in range(1, 81)], 80)
            caught_up.apply(dict.fromkeys(range(10, 20), "acme"), [chunks[i] for i in range(81, 101)], 110)
            caught_up.apply(dict.fromkeys((30, 31), "acme"), [chunks[i] for i in range(101, 121)], 140)
            final = [c for i, c in chunks.items() if not (10 <= i < 20 or i in (30, 31))]
            rebuilt.apply({}, [], 1)
            rebuilt.clear()
            rebuilt.apply({}, final, 140)
            assert caught_up.chunk_ids() == rebuilt.chunk_ids()
            assert caught_up.applied_sequence() == rebuilt.applied_sequence() == 140
            for where in (_admin(), filter_for(Principal(tenant="acme", user="u"))):
                for q in range(0, 120, 13):
                    a = _search(caught_up, where, f"finding {q % 17} severity", vectors[q], depth=15)
                    b = _search(rebuilt, where, f"finding {q % 17} severity", vectors[q], depth=15)
                    # Dense rankings are equal; BM25 may count removed chunks in its statistics
                    # until the engine merges them away (as Lucene does), so lexical lists hold
                    # the same chunks, possibly in a slightly different order.
                    assert _ids(a.dense) == _ids(b.dense)
                    assert set(_ids(a.lexical)) == set(_ids(b.lexical))
        finally:
            caught_up.close()
            rebuilt.close()

    def test_clear_drops_every_chunk_and_the_position(self, backend: SearchBackend) -> None:
        vectors = _vectors(10, seed=8)
        backend.apply({}, [make_chunk(i + 1, "gone soon", vectors[i]) for i in range(10)], 10)
        backend.clear()
        assert backend.size() == 0 and backend.chunk_ids() == set() and backend.applied_sequence() == 0
        assert _search(backend, _admin(), "gone soon", vectors[0]).dense == []

    # -- concurrency -------------------------------------------------------------------

    def test_concurrent_apply_and_search_never_return_a_foreign_chunk(self, backend: SearchBackend) -> None:
        """A tenant replacing its own documents while searching never sees another tenant's chunk."""
        vectors = _vectors(1200, seed=9)
        secret = make_chunk(1, "the launch code is swordfish", vectors[0], tenant="victim")
        crowd = [
            make_chunk(i + 2, "the launch code paragraph", vectors[i + 1], tenant="evil", doc_id="crowd")
            for i in range(1100)
        ]
        backend.apply({}, [secret, *crowd], 1)
        stop = threading.Event()
        errors: list[BaseException] = []
        foreign: list[int] = []
        searches = [0]

        def replace_loop() -> None:
            next_id, sequence, current = 5000, 2, [5000 - 1]
            try:
                while not stop.is_set():
                    fresh = [
                        make_chunk(
                            next_id + j, "the launch code small", vectors[j], tenant="evil", doc_id="small"
                        )
                        for j in range(3)
                    ]
                    backend.apply(dict.fromkeys(current, "evil"), fresh, sequence)
                    current = [c.chunk_id for c in fresh]
                    next_id += 3
                    sequence += 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def search_loop(where: IndexFilter) -> None:
            try:
                while not stop.is_set():
                    found = _search(backend, where, "launch code swordfish", vectors[0], depth=20)
                    searches[0] += 1
                    foreign.extend(i for i in _ids(found.lexical) + _ids(found.dense) if i == 1)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=replace_loop)] + [
            threading.Thread(target=search_loop, args=(where,))
            for where in (_admin("evil"), filter_for(Principal(tenant="evil", user="mallory")))
        ]
        for thread in threads:
            thread.start()
        time.sleep(3.0)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        assert searches[0] > 10
        assert foreign == []

    # -- ranking -----------------------------------------------------------------------

    def test_another_tenants_data_never_changes_a_score(self, backend: SearchBackend) -> None:
        vectors = _vectors(200, seed=10)
        ours = [
            make_chunk(i + 1, f"kubernetes cluster upgrade guide step {i % 9}", vectors[i])
            for i in range(100)
        ]
        backend.apply({}, ours, 1)
        queries = [
            ("cluster upgrade", vectors[3]),
            ("guide step 4", vectors[50]),
            ("kubernetes", vectors[99]),
        ]
        where = filter_for(Principal(tenant="acme", user="frank"))
        before = [_search(backend, where, text, vector, depth=20) for text, vector in queries]
        frequencies = backend.document_frequencies("acme", ["cluster", "upgrad"])
        theirs = [
            make_chunk(
                1000 + i, "cluster cluster upgrade kubernetes kubernetes", vectors[100 + i], tenant="globex"
            )
            for i in range(100)
        ]
        backend.apply({}, theirs, 2)
        after = [_search(backend, where, text, vector, depth=20) for text, vector in queries]
        for a, b in zip(before, after, strict=True):
            assert _ids(a.lexical) == _ids(b.lexical) and _ids(a.dense) == _ids(b.dense)
            for (_, sa), (_, sb) in zip(a.lexical + a.dense, b.lexical + b.dense, strict=True):
                assert abs(sa - sb) <= 1e-6
        assert backend.document_frequencies("acme", ["cluster", "upgrad"]) == frequencies
        assert backend.document_frequencies("globex", ["cluster"])[0] == 100

    def test_dense_recall_at_10_against_exact_search(self, backend: SearchBackend) -> None:
        """The top 10 of a search at the default candidate depth (50) against exact search."""
        count = 20_000
        vectors = _vectors(count, seed=11)
        for start in range(0, count, 5000):
            batch = [make_chunk(i + 1, f"chunk {i}", vectors[i]) for i in range(start, start + 5000)]
            backend.apply({}, batch, start + 5000)
        rng = np.random.default_rng(12)
        hits = total = 0
        for _ in range(50):
            query = _unit(rng.standard_normal(DIM).astype(np.float32))
            exact = set(np.argsort(-(vectors @ query))[:10] + 1)
            found = _search(backend, _admin(), "", query, depth=50).dense[:10]
            hits += len(exact & set(_ids(found)))
            total += 10
        assert hits / total >= 0.95, f"recall@10 {hits / total:.3f}"
