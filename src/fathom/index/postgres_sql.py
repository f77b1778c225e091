"""Every SQL statement of the PostgreSQL search backend (:mod:`fathom.index.postgres`), in one place.

Tables (all prefixed ``fathom_search_``; derived data, dropped and rebuilt when ``LAYOUT`` or the
backend's options change, never part of the store's Alembic migrations)::

    meta      one row: layout, vector dimensions (NULL before the first chunk), applied sequence
    tenants   per tenant and writer slot: chunk count and total length in terms (summed over
              slots: BM25's N and average length)
    terms     per tenant, term id and writer slot: document frequency (summed: BM25's df)
    chunks    one row per chunk, LIST-partitioned by tenant (one partition per tenant): ACL and
              metadata tokens (text[], GIN), term ids (int4[], GIN), BM25 weights (sparsevec),
              embedding (vector(dim), HNSW cosine)

One partition per tenant gives each tenant its own HNSW graph and GIN indexes: a tenant's query
never walks another tenant's vectors (no filter selectivity problem for small tenants), and
dropping a tenant is dropping a table. Queries go through the parent table with ``tenant = :t``;
PostgreSQL prunes to the one partition.

Writers run in parallel. The BM25 statistics are counters, and one counter row per tenant and
term would make every writer of a tenant wait for the others' commits (row locks on "the", "of"
...). So each writing transaction first takes a free *writer slot* (``pg_try_advisory_xact_lock``
on ``SLOT_LOCK`` and a slot number) and adds its deltas to that slot's rows only; readers sum the
slots. Two transactions never hold one slot, so writers never wait on each other's statistics.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import TextClause, text

from fathom.index.sparse_bm25 import DIMENSIONS

__all__ = ["LAYOUT", "partition_name"]

# Bumped whenever the tables or what goes into them change; another layout is dropped on open.
LAYOUT = "2"

# Advisory lock keys: schema changes (create, drop, new partitions) and catch-up/rebuild; writer
# slots are the two-key locks (SLOT_LOCK, slot).
DDL_LOCK = 0x66617470
INDEXER_LOCK = 0x66617471
SLOT_LOCK = 0x66617472
SLOTS = 64

META_TABLE = "fathom_search_meta"
TENANTS_TABLE = "fathom_search_tenants"
TERMS_TABLE = "fathom_search_terms"
CHUNKS_TABLE = "fathom_search_chunks"


def partition_name(tenant: str) -> str:
    """The table of a tenant's chunks: a hash, so no tenant name reaches an identifier."""
    return "fathom_search_p_" + hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:24]


LOCK = text("SELECT pg_advisory_xact_lock(:key)")
WAIT_SLOT = text("SELECT pg_advisory_xact_lock(:key, :slot)")
SESSION_LOCK = text("SELECT pg_advisory_lock(:key)")
SESSION_UNLOCK = text("SELECT pg_advisory_unlock(:key)")

CREATE_EXTENSION = text("CREATE EXTENSION IF NOT EXISTS vector")
HAS_EXTENSION = text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")

CREATE_META = text(
    f"CREATE TABLE IF NOT EXISTS {META_TABLE} ("
    " id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),"
    " layout text NOT NULL,"
    " dimensions integer,"
    " applied_seq bigint NOT NULL DEFAULT 0)"
    " WITH (fillfactor = 10)"
)
READ_META = text(f"SELECT layout, dimensions, applied_seq FROM {META_TABLE} WHERE id = 1")
# The first statement of a write: the vector dimensions, and the first free writer slot (its
# lock held until the transaction ends; NULL when all are taken). The filter stops at the first
# lock it gets.
WRITE_START = text(
    f"SELECT dimensions, (SELECT s FROM generate_series(0, {SLOTS - 1}) AS s"
    "  WHERE pg_try_advisory_xact_lock(:key, s) LIMIT 1) AS slot"
    f" FROM {META_TABLE} WHERE id = 1"
)
RESET_META = text(
    f"INSERT INTO {META_TABLE} (id, layout, dimensions, applied_seq) VALUES (1, :layout, NULL, 0)"
    " ON CONFLICT (id) DO UPDATE SET layout = EXCLUDED.layout, dimensions = NULL, applied_seq = 0"
)
SET_DIMENSIONS = text(f"UPDATE {META_TABLE} SET dimensions = :dimensions WHERE id = 1")
APPLIED = text(f"SELECT applied_seq FROM {META_TABLE} WHERE id = 1")
SET_APPLIED = text(f"UPDATE {META_TABLE} SET applied_seq = :sequence WHERE id = 1")
# A write inside the store's transaction advances the position only from the head it followed:
# a backend still being rebuilt (behind that head) stays behind, and catch-up replays. Writers
# commit in any order, so the position only ever moves forward. (The row lock this takes is held
# only from this last statement to the commit.)
ADVANCE_APPLIED = text(
    f"UPDATE {META_TABLE} SET applied_seq = :sequence"
    " WHERE id = 1 AND applied_seq >= :previous AND applied_seq < :sequence"
)

DROP_ALL = text(f"DROP TABLE IF EXISTS {CHUNKS_TABLE}, {TENANTS_TABLE}, {TERMS_TABLE} CASCADE")
DROP_CHUNKS = text(f"DROP TABLE IF EXISTS {CHUNKS_TABLE} CASCADE")
CREATE_TENANTS = text(
    f"CREATE TABLE IF NOT EXISTS {TENANTS_TABLE} ("
    " tenant text NOT NULL,"
    " slot smallint NOT NULL,"
    " chunks bigint NOT NULL DEFAULT 0,"
    " total_length bigint NOT NULL DEFAULT 0,"
    " PRIMARY KEY (tenant, slot))"
    # Room on each page, so updating a counter stays a HOT update (no new index entry).
    " WITH (fillfactor = 50)"
)
CREATE_TERMS = text(
    f"CREATE TABLE IF NOT EXISTS {TERMS_TABLE} ("
    " tenant text NOT NULL,"
    " term integer NOT NULL,"
    " slot smallint NOT NULL,"
    " df integer NOT NULL,"
    " PRIMARY KEY (tenant, term, slot))"
    " WITH (fillfactor = 50)"
)
TRUNCATE_STATS = text(f"TRUNCATE {TENANTS_TABLE}, {TERMS_TABLE}")


def create_chunks(dimensions: int, hnsw_m: int, hnsw_ef_construction: int) -> list[TextClause]:
    """The partitioned chunk table and its partitioned indexes (each partition gets its own)."""
    return [
        text(
            f"CREATE TABLE {CHUNKS_TABLE} ("
            " tenant text NOT NULL,"
            " chunk_id bigint NOT NULL,"
            " doc_id text NOT NULL,"
            " acl text[] NOT NULL,"
            " meta text[] NOT NULL,"
            " terms integer[] NOT NULL,"
            " length integer NOT NULL,"
            " bm25 sparsevec NOT NULL,"
            f" embedding vector({int(dimensions)}) NOT NULL,"
            " PRIMARY KEY (tenant, chunk_id))"
            " PARTITION BY LIST (tenant)"
        ),
        text(f"CREATE INDEX {CHUNKS_TABLE}_acl ON {CHUNKS_TABLE} USING gin (acl)"),
        text(f"CREATE INDEX {CHUNKS_TABLE}_meta ON {CHUNKS_TABLE} USING gin (meta)"),
        text(f"CREATE INDEX {CHUNKS_TABLE}_terms ON {CHUNKS_TABLE} USING gin (terms)"),
        text(
            f"CREATE INDEX {CHUNKS_TABLE}_embedding ON {CHUNKS_TABLE}"
            f" USING hnsw (embedding vector_cosine_ops)"
            f" WITH (m = {int(hnsw_m)}, ef_construction = {int(hnsw_ef_construction)})"
        ),
    ]


HAS_PARTITION = text("SELECT to_regclass(:name) IS NOT NULL")
# Before a tenant's rows are written: whether its partition exists, and its statistics.
PARTITION_AND_STATS = text(
    "SELECT to_regclass(:name) IS NOT NULL, coalesce(sum(chunks), 0), coalesce(sum(total_length), 0)"
    f" FROM {TENANTS_TABLE} WHERE tenant = :tenant"
)
QUOTE_LITERAL = text("SELECT quote_literal(:value)")


def create_partition(name: str, tenant_literal: str) -> list[TextClause]:
    """A tenant's partition, created apart and then attached.

    ``ATTACH PARTITION`` takes only a SHARE UPDATE EXCLUSIVE lock on the parent, so searches and
    writes of other tenants go on; the partitioned indexes are created on the (empty) table as
    it is attached. Rows stay in the heap page (``toast_tuple_target``) so ranking reads no TOAST.
    """
    return [
        text(
            f"CREATE TABLE {name} (LIKE {CHUNKS_TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            " WITH (toast_tuple_target = 8160)"
        ),
        text(f"ALTER TABLE {CHUNKS_TABLE} ATTACH PARTITION {name} FOR VALUES IN ({tenant_literal})"),
    ]


TENANT_STATS = text(
    f"SELECT coalesce(sum(chunks), 0), coalesce(sum(total_length), 0) FROM {TENANTS_TABLE}"
    " WHERE tenant = :tenant"
)
# A tenant's document frequencies: the slots' deltas summed (a term no chunk holds any more sums
# to 0 and is left out).
_DF = (
    f"SELECT term, sum(df) AS df FROM {TERMS_TABLE}"
    " WHERE tenant = :tenant AND term = ANY(CAST(:terms AS integer[]))"
    " GROUP BY term HAVING sum(df) > 0"
)

# Remove chunks of one tenant and take their terms and lengths out of the statistics (as negative
# deltas in the writer's slot), in one statement (the data-modifying CTEs all run, referenced or not).
REMOVE = text(
    f"WITH gone AS ("
    f"  DELETE FROM {CHUNKS_TABLE} WHERE tenant = :tenant AND chunk_id = ANY(CAST(:ids AS bigint[]))"
    f"  RETURNING terms, length"
    f"), lowered AS ("
    f"  INSERT INTO {TERMS_TABLE} AS t (tenant, term, slot, df)"
    f"  SELECT :tenant, term, :slot, -count(*) FROM gone, unnest(gone.terms) AS term"
    f"  GROUP BY term ORDER BY term"
    f"  ON CONFLICT (tenant, term, slot) DO UPDATE SET df = t.df + EXCLUDED.df RETURNING 1"
    f")"
    f" INSERT INTO {TENANTS_TABLE} AS s (tenant, slot, chunks, total_length)"
    f" SELECT :tenant, :slot, -count(*), -coalesce(sum(length), 0) FROM gone"
    f" ON CONFLICT (tenant, slot) DO UPDATE SET"
    f"  chunks = s.chunks + EXCLUDED.chunks, total_length = s.total_length + EXCLUDED.total_length"
)
COPY_COLUMNS = ("tenant", "chunk_id", "doc_id", "acl", "meta", "terms", "length", "bm25", "embedding")
# The term ids of the rows just written, counted into the writer's slot, and the tenant's chunk
# count and length, in one statement.
ADD_STATS = text(
    f"WITH added AS ("
    f"  INSERT INTO {TERMS_TABLE} AS t (tenant, term, slot, df)"
    f"  SELECT :tenant, term, :slot, count(*) FROM unnest(CAST(:terms AS integer[])) AS term"
    f"  GROUP BY term ORDER BY term"
    f"  ON CONFLICT (tenant, term, slot) DO UPDATE SET df = t.df + EXCLUDED.df RETURNING 1"
    f")"
    f" INSERT INTO {TENANTS_TABLE} AS s (tenant, slot, chunks, total_length)"
    f" VALUES (:tenant, :slot, :chunks, :length)"
    f" ON CONFLICT (tenant, slot) DO UPDATE SET"
    f"  chunks = s.chunks + EXCLUDED.chunks, total_length = s.total_length + EXCLUDED.total_length"
)

COUNT = text(f"SELECT count(*) FROM {CHUNKS_TABLE}")
CHUNK_IDS = text(f"SELECT chunk_id FROM {CHUNKS_TABLE}")
FREQUENCIES = text(_DF)

# The first statement of a search: what the ranking needs to know, and the dense settings for
# this transaction. ef_search bounds the HNSW candidate list; iterative scans continue past it
# while a filter drops candidates (relaxed order: re-sorted by the query), up to
# hnsw.max_scan_tuples.
SEARCH_START = text(
    "SELECT m.dimensions,"
    f" (SELECT coalesce(sum(t.chunks), 0) FROM {TENANTS_TABLE} t WHERE t.tenant = :tenant) AS chunks,"
    " set_config('hnsw.ef_search', :ef_search, true),"
    " set_config('hnsw.iterative_scan', 'relaxed_order', true)"
    f" FROM {META_TABLE} m WHERE m.id = 1"
)
EXACT_SETTINGS = text("SELECT set_config('enable_indexscan', 'off', true)")


def _filters(acl: bool, metadata: bool) -> str:
    clauses = ""
    if acl:
        clauses += " AND c.acl && CAST(:acl AS text[])"
    if metadata:
        clauses += " AND c.meta @> CAST(:meta AS text[])"
    return clauses


def lexical_query(acl: bool, metadata: bool) -> TextClause:
    """BM25 among the tenant's chunks that pass the filter and hold a distinctive query term.

    The query vector is built from the tenant's own document frequencies in the same snapshot:
    ``idf(t) * (times t occurs in the query)`` for each term the tenant has. Candidates are the
    chunks holding a query term that at most ``:common`` of the tenant's chunks hold (all query
    terms when every one is that common): words like "the" then cost nothing, and still count
    in every candidate's score.
    """
    return text(
        "WITH stats AS ("
        f"  SELECT sum(chunks) AS chunks FROM {TENANTS_TABLE} WHERE tenant = :tenant"
        "), weights AS ("
        "  SELECT q.term, (q.tf * ln(1 + (s.chunks - d.df + 0.5) / (d.df + 0.5)))::real AS w,"
        "    d.df <= :common * s.chunks AS distinctive"
        "  FROM unnest(CAST(:terms AS integer[]), CAST(:tfs AS integer[])) AS q(term, tf)"
        f"  JOIN ({_DF}) d ON d.term = q.term"
        "  CROSS JOIN stats s"
        "), query AS MATERIALIZED ("
        "  SELECT CAST('{' || string_agg(term || ':' || w, ',' ORDER BY term)"
        f"    || '}}/{DIMENSIONS}' AS sparsevec) AS v,"
        "    coalesce(array_agg(term) FILTER (WHERE distinctive), array_agg(term)) AS candidates"
        "  FROM weights"
        ")"
        " SELECT c.chunk_id, -(c.bm25 <#> query.v) AS score"
        f" FROM {CHUNKS_TABLE} c CROSS JOIN query"
        " WHERE query.v IS NOT NULL AND c.tenant = :tenant AND c.terms && query.candidates"
        f"{_filters(acl, metadata)}"
        " ORDER BY c.bm25 <#> query.v, c.chunk_id LIMIT :depth"
    )


def dense_query(acl: bool, metadata: bool) -> TextClause:
    """The nearest chunks by cosine similarity among those that pass the filter, best first."""
    return text(
        "WITH nearest AS MATERIALIZED ("
        "  SELECT c.chunk_id, c.embedding <=> CAST(:vector AS vector) AS distance"
        f"  FROM {CHUNKS_TABLE} c WHERE c.tenant = :tenant{_filters(acl, metadata)}"
        "  ORDER BY c.embedding <=> CAST(:vector AS vector) LIMIT :depth"
        ")"
        " SELECT chunk_id, 1 - distance AS score FROM nearest ORDER BY distance, chunk_id"
    )
