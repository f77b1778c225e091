"""The PostgreSQL search backend: pgvector HNSW and BM25 inside the store of record's own database.

Chunks live in a table partitioned by tenant (:mod:`fathom.index.postgres_sql` holds every
statement and describes the tables). Lexical search is true BM25 computed by PostgreSQL: chunks
carry saturated term weights as a pgvector ``sparsevec``, queries an IDF vector built from the
tenant's document frequencies, and ``<#>`` is their inner product (:mod:`fathom.index.sparse_bm25`);
a GIN index on the chunk's term ids finds the candidates. Dense search is pgvector's HNSW
(cosine) with iterative index scans, so a filter that drops most candidates still yields ``depth``
results; a filter so selective that the scan gives up is answered exactly. Tenant, ACL and
metadata conditions are in the same SQL as the ranking, and both lists are read in one
REPEATABLE READ snapshot.

The store writes these rows in its own transactions (:meth:`PostgresBackend.write`, the
:class:`~fathom.index.backend.TransactionalIndex` seam): a commit is visible to every serving
node at once, nodes hold no index files and never catch up. ``apply`` (catch-up, rebuilds,
the conformance suite) writes the same rows in a transaction of its own.

Writers do not wait for each other: each transaction writes its statistics into its own writer
slot (see :mod:`fathom.index.postgres_sql`), its chunk rows arrive in one ``COPY``, and the only
row all writers update, the applied position, is updated last, just before the commit.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import structlog
from sqlalchemy import Connection, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from fathom.errors import BackendUnavailable, ConfigError
from fathom.index import postgres_copy
from fathom.index import postgres_sql as sql
from fathom.index.backend import Candidates, SearchRequest
from fathom.index.sparse_bm25 import (
    K1,
    B,
    analyze_chunk,
    chunk_weights,
    query_terms,
    sparsevec_literal,
    term_id,
)
from fathom.index.types import IndexableChunk, IndexFilter, ScoredId
from fathom.store.replicas import ReadReplicas

__all__ = ["PostgresBackend"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# pgvector's upper bound for hnsw.ef_search.
_MAX_EF_SEARCH = 1000
# Query terms held by more than this share of a tenant's chunks do not make a chunk a BM25
# candidate on their own (they still count in its score). On SciFact train (bench/pg_lexical.py)
# 5% scores a third of the chunks 100% does, at the same nDCG@10 (lexical and fused).
COMMON_TERMS = 0.05


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.8g}" for x in np.asarray(vector, dtype=np.float32).tolist()) + "]"


def _missing_table(exc: DBAPIError) -> bool:
    """Whether a statement failed because a table was dropped meanwhile (a concurrent rebuild)."""
    return getattr(exc.orig, "sqlstate", None) == "42P01"


class PostgresBackend:
    """Chunks, BM25 statistics and vectors in PostgreSQL tables (see the module docstring).

    Args:
        url: SQLAlchemy URL of the PostgreSQL database (the store of record's).
        context_in_body: BM25 ranks the chunk's title and heading path with its text.
        ef_search: HNSW candidate list size (at least the query's depth is used).
        hnsw_m, hnsw_ef_construction: HNSW graph parameters (changing them rebuilds the tables).
        common_terms: query terms in more than this share of a tenant's chunks find no candidates
            on their own (1.0: every chunk holding any query term is scored).
        replicas: streaming replicas that answer searches and term statistics (writes, status
            and rebuilds stay on ``url``, the primary); None: everything on ``url``.

    Raises:
        ConfigError: the URL is not PostgreSQL, or the database lacks pgvector.
        BackendUnavailable: the database cannot be reached.
    """

    name = "postgres"

    def __init__(
        self,
        url: str,
        *,
        context_in_body: bool = True,
        ef_search: int = 100,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        common_terms: float = COMMON_TERMS,
        replicas: ReadReplicas | None = None,
    ) -> None:
        if not url.startswith("postgresql"):
            raise ConfigError(
                "index_backend 'postgres' needs a PostgreSQL database_url (postgresql+psycopg://...)",
                code="config.index_backend",
            )
        self._engine = create_engine(url)
        self._replicas = replicas
        if replicas is not None:
            replicas.watch(self._engine)
        self._context_in_body = context_in_body
        self._ef_search = ef_search
        self._common = common_terms
        self._hnsw = (hnsw_m, hnsw_ef_construction)
        self._layout = (
            f"{sql.LAYOUT}-{'context' if context_in_body else 'text'}"
            f"-m{hnsw_m}-efc{hnsw_ef_construction}-k1={K1}-b={B}"
        )
        try:
            self._open()
        except BaseException:
            self._engine.dispose()
            raise

    # -- schema ------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(sql.LOCK, {"key": sql.DDL_LOCK})
                self._ensure_extension(conn)
                conn.execute(sql.CREATE_META)
                row = conn.execute(sql.READ_META).one_or_none()
                if row is None or row.layout != self._layout:
                    # Another layout (or none yet): derived data, dropped; replaying the change
                    # log from 0 rebuilds it.
                    conn.execute(sql.DROP_ALL)
                    conn.execute(sql.RESET_META, {"layout": self._layout})
                    if row is not None:
                        log.info("index.layout_changed", backend=self.name, layout=self._layout)
                conn.execute(sql.CREATE_TENANTS)
                conn.execute(sql.CREATE_TERMS)
        except OperationalError as exc:
            safe = self._engine.url.render_as_string(hide_password=True)
            raise BackendUnavailable(f"cannot open the search tables at {safe}") from exc

    @staticmethod
    def _ensure_extension(conn: Connection) -> None:
        if conn.execute(sql.HAS_EXTENSION).scalar_one_or_none() is not None:
            return
        try:
            with conn.begin_nested():
                conn.execute(sql.CREATE_EXTENSION)
        except DBAPIError:
            raise ConfigError(
                "index_backend 'postgres' needs the pgvector extension in this database, and it "
                "could not be created: install pgvector and run CREATE EXTENSION vector as a superuser "
                "(or try `fathom pg start`)",
                code="config.pgvector_missing",
            ) from None

    def _dimensions(self, conn: Connection) -> int | None:
        row = conn.execute(sql.READ_META).one()
        return None if row.dimensions is None else int(row.dimensions)

    def _ensure_chunks(self, conn: Connection, dimensions: int, current: int | None) -> int:
        """The chunk table for vectors of ``dimensions`` (created with the first chunk; ``current``
        is what the table holds); returns its dimensions (``ConfigError`` if not ``dimensions``)."""
        if current is None:
            conn.execute(sql.LOCK, {"key": sql.DDL_LOCK})
            current = self._dimensions(conn)
            if current is None:
                for statement in sql.create_chunks(dimensions, *self._hnsw):
                    conn.execute(statement)
                conn.execute(sql.SET_DIMENSIONS, {"dimensions": dimensions})
                current = dimensions
        _check_dimensions(current, dimensions)
        return current

    def _create_partition(self, conn: Connection, tenant: str) -> None:
        name = sql.partition_name(tenant)
        conn.execute(sql.LOCK, {"key": sql.DDL_LOCK})
        if not conn.execute(sql.HAS_PARTITION, {"name": name}).scalar_one():
            literal = conn.execute(sql.QUOTE_LITERAL, {"value": tenant}).scalar_one()
            for statement in sql.create_partition(name, literal):
                conn.execute(statement)

    @staticmethod
    def _start(conn: Connection) -> tuple[int | None, int]:
        """The stored vector dimensions, and a writer slot no other open transaction holds
        (held until this one ends)."""
        dimensions, slot = conn.execute(sql.WRITE_START, {"key": sql.SLOT_LOCK}).one()
        if slot is None:  # more writers than slots: share one, waiting for its holder to finish
            slot = int(np.random.default_rng().integers(sql.SLOTS))
            conn.execute(sql.WAIT_SLOT, {"key": sql.SLOT_LOCK, "slot": slot})
        return (None if dimensions is None else int(dimensions)), int(slot)

    # -- writing -----------------------------------------------------------------------

    def applied_sequence(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sql.APPLIED).scalar_one())

    def apply(self, removed: Mapping[int, str], added: Sequence[IndexableChunk], sequence: int) -> None:
        with self._engine.begin() as conn:
            self._write(conn, removed, added)
            conn.execute(sql.SET_APPLIED, {"sequence": sequence})

    def write(
        self,
        connection: Connection,
        removed: Mapping[int, str],
        added: Sequence[IndexableChunk],
        previous_sequence: int,
        sequence: int,
    ) -> None:
        """Write a change in the store's own transaction (``connection``), committed with it.

        ``previous_sequence`` is the change-log head before this transaction's rows, ``sequence``
        the last of them: the applied position moves to ``sequence`` only from that head.
        """
        self._write(connection, removed, added)
        # Last: every writer updates this one row, and holds it only until its commit.
        connection.execute(sql.ADVANCE_APPLIED, {"sequence": sequence, "previous": previous_sequence})

    def _write(self, conn: Connection, removed: Mapping[int, str], added: Sequence[IndexableChunk]) -> None:
        # Every added chunk is removed first too: replaying a batch leaves the same rows and
        # statistics (idempotent).
        gone: dict[str, list[int]] = defaultdict(list)
        for chunk_id, tenant in removed.items():
            gone[tenant].append(chunk_id)
        new: dict[str, list[IndexableChunk]] = defaultdict(list)
        for chunk in added:
            new[chunk.tenant_id].append(chunk)
            if removed.get(chunk.chunk_id) != chunk.tenant_id:
                gone[chunk.tenant_id].append(chunk.chunk_id)
        dimensions, slot = self._start(conn)
        if added:
            dimensions = self._ensure_chunks(conn, int(np.asarray(added[0].embedding).shape[0]), dimensions)
        elif dimensions is None:
            return  # nothing was ever indexed: nothing to remove
        for tenant in sorted(set(gone) | set(new)):
            if gone.get(tenant):
                conn.execute(sql.REMOVE, {"tenant": tenant, "slot": slot, "ids": sorted(gone[tenant])})
            if new.get(tenant):
                assert dimensions is not None
                self._insert(conn, tenant, slot, dimensions, new[tenant])

    def _insert(
        self, conn: Connection, tenant: str, slot: int, dimensions: int, chunks: list[IndexableChunk]
    ) -> None:
        params = {"name": sql.partition_name(tenant), "tenant": tenant}
        exists, count, total = conn.execute(sql.PARTITION_AND_STATS, params).one()
        if not exists:
            self._create_partition(conn, tenant)
        analyzed = [analyze_chunk(chunk, context_in_body=self._context_in_body) for chunk in chunks]
        added_length = sum(a.length for a in analyzed)
        # The tenant's average chunk length including this batch (see sparse_bm25).
        average = (int(total) + added_length) / max(int(count) + len(chunks), 1)
        rows: list[tuple[Any, ...]] = []
        all_terms: list[int] = []
        for chunk, terms in zip(chunks, analyzed, strict=True):
            vector = np.asarray(chunk.embedding, dtype=np.float32)
            _check_dimensions(dimensions, int(vector.shape[0]))
            ids = sorted(terms.frequencies)
            all_terms.extend(ids)
            rows.append(
                (
                    tenant,
                    chunk.chunk_id,
                    chunk.doc_id,
                    list(chunk.acl_tokens),
                    list(chunk.metadata_tokens),
                    # Array literals as text: COPY parses them faster than the driver adapts lists.
                    "{" + ",".join(map(str, ids)) + "}",
                    terms.length,
                    sparsevec_literal(chunk_weights(terms, average)),
                    _vector_literal(vector),
                )
            )
        postgres_copy.copy_rows(conn, sql.CHUNKS_TABLE, sql.COPY_COLUMNS, rows)
        conn.execute(
            sql.ADD_STATS,
            {
                "tenant": tenant,
                "slot": slot,
                "terms": all_terms,
                "chunks": len(chunks),
                "length": added_length,
            },
        )

    def clear(self) -> None:
        with self._engine.begin() as conn:
            conn.execute(sql.LOCK, {"key": sql.DDL_LOCK})
            conn.execute(sql.DROP_CHUNKS)
            conn.execute(sql.TRUNCATE_STATS)
            conn.execute(sql.RESET_META, {"layout": self._layout})

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Catch-up and rebuilds one at a time across every process on this database."""
        with self._engine.connect() as conn:
            conn.execute(sql.SESSION_LOCK, {"key": sql.INDEXER_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sql.SESSION_UNLOCK, {"key": sql.INDEXER_LOCK})
                conn.commit()

    def close(self) -> None:
        self._engine.dispose()

    # -- reading -----------------------------------------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read-only transaction that sees one snapshot for all its statements."""
        with self._engine.connect() as conn:
            # One BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY, no extra round trip.
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            try:
                yield conn
            finally:
                conn.rollback()

    def size(self) -> int:
        with self._snapshot() as conn:
            if self._dimensions(conn) is None:
                return 0
            return int(conn.execute(sql.COUNT).scalar_one())

    def sizes(self) -> dict[str, int]:
        """Chunks searchable lexically and densely (one row serves both)."""
        size = self.size()
        return {"lexical": size, "dense": size}

    def chunk_ids(self) -> set[int]:
        with self._snapshot() as conn:
            if self._dimensions(conn) is None:
                return set()
            return {int(chunk_id) for chunk_id in conn.execute(sql.CHUNK_IDS).scalars()}

    def _read(self, read: Callable[[Connection], T], *, follow: bool = False) -> T:
        """``read`` in one read-only snapshot, on a replica when there are replicas."""
        if self._replicas is None:
            with self._snapshot() as conn:
                return read(conn)
        return self._replicas.read(self._engine, read, snapshot=True, follow=follow)

    def document_frequencies(self, tenant: str, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        ids = {term: term_id(term) for term in terms}

        def read(conn: Connection) -> tuple[int, dict[int, int]]:
            chunks = int(conn.execute(sql.TENANT_STATS, {"tenant": tenant}).one()[0])
            rows = conn.execute(sql.FREQUENCIES, {"tenant": tenant, "terms": sorted(set(ids.values()))})
            return chunks, {int(term): int(df) for term, df in rows}

        chunks, found = self._read(read, follow=True)  # the statistics of the search just made
        return chunks, {term: found.get(ids[term], 0) for term in terms}

    def search(self, request: SearchRequest) -> Candidates:
        if request.depth <= 0:
            return Candidates([], [])
        try:
            return self._read(lambda conn: self._search(conn, request))
        except ProgrammingError as exc:
            if _missing_table(exc):  # the tables were dropped by a rebuild meanwhile
                return Candidates([], [])
            raise

    def _search(self, conn: Connection, request: SearchRequest) -> Candidates:
        where = request.where
        started = time.perf_counter()
        ef_search = min(max(self._ef_search, request.depth), _MAX_EF_SEARCH)
        dimensions, chunks, _, _ = conn.execute(
            sql.SEARCH_START, {"tenant": where.tenant, "ef_search": str(ef_search)}
        ).one()
        if dimensions is None or not chunks:
            return Candidates([], [])
        lexical = self._lexical(conn, request.text, where, request.depth) if request.text else []
        lexical_done = time.perf_counter()
        dense: list[ScoredId] = []
        if request.vector is not None:
            _check_dimensions(int(dimensions), int(np.asarray(request.vector).shape[0]))
            dense = self._dense(conn, request.vector, where, request.depth, int(chunks))
        dense_done = time.perf_counter()
        return Candidates(
            lexical,
            dense,
            {"lexical": (lexical_done - started) * 1000, "dense": (dense_done - lexical_done) * 1000},
        )

    @staticmethod
    def _filter_params(where: IndexFilter) -> dict[str, Any]:
        params: dict[str, Any] = {"tenant": where.tenant}
        if where.acl_tokens is not None:
            params["acl"] = list(where.acl_tokens)
        if where.metadata:
            params["meta"] = list(where.metadata)
        return params

    def _lexical(self, conn: Connection, text: str, where: IndexFilter, depth: int) -> list[ScoredId]:
        terms = query_terms(text)
        if not terms:
            return []
        ordered = sorted(terms)
        query = sql.lexical_query(where.acl_tokens is not None, bool(where.metadata))
        params = {
            **self._filter_params(where),
            "terms": ordered,
            "tfs": [terms[t] for t in ordered],
            "common": self._common,
            "depth": depth,
        }
        found = [(int(chunk_id), float(score)) for chunk_id, score in conn.execute(query, params)]
        if len(found) < depth and self._common < 1.0:
            # Fewer chunks than wanted hold a distinctive term (or pass the filter among them):
            # score every chunk holding any query term, so a short list is exact BM25.
            params["common"] = 1.0
            found = [(int(chunk_id), float(score)) for chunk_id, score in conn.execute(query, params)]
        return found

    def _dense(
        self, conn: Connection, vector: np.ndarray, where: IndexFilter, depth: int, tenant_chunks: int
    ) -> list[ScoredId]:
        query = sql.dense_query(where.acl_tokens is not None, bool(where.metadata))
        params = {**self._filter_params(where), "vector": _vector_literal(vector), "depth": depth}
        found = [(int(chunk_id), float(score)) for chunk_id, score in conn.execute(query, params)]
        if len(found) < min(depth, tenant_chunks):
            # The iterative scan gave up before finding ``depth`` chunks that pass the filter (or
            # fewer than that pass it): rank the filter's chunks exactly, found through GIN.
            conn.execute(sql.EXACT_SETTINGS)
            found = [(int(chunk_id), float(score)) for chunk_id, score in conn.execute(query, params)]
        return found


def _check_dimensions(stored: int, given: int) -> None:
    if stored != given:
        raise ConfigError(
            f"the postgres search index holds {stored}-dimensional vectors but the embedder makes "
            f"{given}-dimensional ones; run `fathom reindex`",
            code="index.dimensions_changed",
        )
