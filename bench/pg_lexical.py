"""Which lexical ranking the postgres backend should use: measured on SciFact train.

    python -m bench.pg_lexical --database-url postgresql+psycopg://postgres@127.0.0.1:PORT/fathom
                               [--beir ../shared/data/scifact] [--split train]

The database is one holding the SciFact corpus ingested by fathom with ``index_backend =
"postgres"`` (e.g. the eval home of ``FATHOM_INDEX_BACKEND=postgres fathom eval retrieval``):
its chunks (title and headings in the text, as every backend indexes them) are ranked by

- PostgreSQL full-text search over a GIN-indexed ``tsvector`` ('english' configuration, the
  query's lexemes OR-ed): ``ts_rank`` and ``ts_rank_cd``, without and with length normalisation;
- BM25 as pgvector ``sparsevec`` (fathom's postgres backend): as ingested (each chunk weighted
  with its tenant's average length at the time it was written), and rebuilt in one batch (the
  exact final average length); and with candidates found through more or fewer query terms
  (terms held by more than a share of the chunks find no candidates on their own: the default
  share is ``COMMON_TERMS``; 100% scores every chunk holding any query term, exact BM25);
- tantivy BM25 (the embedded backend) on the same chunks, as the reference.

For each: lexical-only nDCG@10 / Recall@100 / MRR@10 per document (a document ranks by its best
chunk) and per-query latency, and nDCG@10 after fusion with the same dense list (fathom's
default z-score fusion), which is what users get. Writes bench/results/pg_lexical.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.machine import machine_info, replace_between_markers
from fathom.config import Settings
from fathom.domain import Principal, contextual_text
from fathom.embed.base import create_embedder
from fathom.eval.beir import load_beir
from fathom.eval.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from fathom.index.backend import SearchBackend, SearchRequest
from fathom.index.embedded import EmbeddedBackend
from fathom.index.postgres import COMMON_TERMS, PostgresBackend
from fathom.index.types import IndexableChunk, IndexFilter, ScoredId
from fathom.index.vocabulary import filter_for
from fathom.normalize import fold_for_index
from fathom.retrieve.fusion import zscore_fusion
from fathom.store.database import Store

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "pg_lexical.json"
DOC = ROOT / "docs" / "scale.md"
MARKER = "bench/pg_lexical.py"
SOURCE_PREFIX = "beir/"
DEPTH = 200  # what `fathom eval retrieval` asks each list for (k=100, twice for collapsing)

TS_TABLE = "bench_lexical_tsvector"
TS_QUERY = (
    "SELECT chunk_id, {rank}(tsv, q{norm}) AS score"
    f" FROM {TS_TABLE}, (SELECT replace(plainto_tsquery('english', :query)::text, '&', '|')::tsquery AS q) x"
    " WHERE tsv @@ q ORDER BY score DESC, chunk_id LIMIT :depth"
)

Ranker = Callable[[str], list[ScoredId]]


def _docs(ranked: Sequence[ScoredId], doc_of: dict[int, str]) -> list[str]:
    seen: dict[str, None] = {}
    for chunk_id, _ in ranked:
        doc = doc_of.get(chunk_id)
        if doc is not None:
            seen.setdefault(doc, None)
    return list(seen)


def _measure(
    name: str,
    ranker: Ranker,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    dense: dict[str, list[ScoredId]],
    doc_of: dict[int, str],
    settings: Settings,
) -> dict[str, Any]:
    for warm in ("warm up", "protein folding"):
        ranker(warm)
    ndcg = recall = mrr = hybrid = 0.0
    short = 0
    latencies: list[float] = []
    for query_id, query in queries.items():
        started = time.perf_counter()
        lexical = ranker(query)
        latencies.append((time.perf_counter() - started) * 1000)
        short += len(lexical) < DEPTH
        ranking = _docs(lexical, doc_of)
        relevant = qrels[query_id]
        ndcg += ndcg_at_k(ranking, relevant, 10)
        recall += recall_at_k(ranking, relevant, 100)
        mrr += mrr_at_k(ranking, relevant, 10)
        fused = zscore_fusion(
            [lexical, dense[query_id]],
            (settings.lexical_weight, settings.dense_weight),
            (0.0, settings.dense_min_spread),
            rank_weight=settings.fusion_rank_weight,
            rank_k=settings.rrf_k,
        )
        hybrid += ndcg_at_k(_docs(fused, doc_of), relevant, 10)
    count = len(queries)
    row = {
        "variant": name,
        "lexical_ndcg@10": round(ndcg / count, 4),
        "lexical_recall@100": round(recall / count, 4),
        "lexical_mrr@10": round(mrr / count, 4),
        "hybrid_ndcg@10": round(hybrid / count, 4),
        "lexical_p50_ms": round(percentile(latencies, 50), 2),
        "lexical_p95_ms": round(percentile(latencies, 95), 2),
        "queries_with_fewer_than_depth": short,
    }
    print(json.dumps(row), flush=True)
    return row


def _backend_ranker(backend: SearchBackend, where: IndexFilter) -> Ranker:
    def rank(query: str) -> list[ScoredId]:
        request = SearchRequest(text=query, vector=None, where=where, depth=DEPTH)
        return backend.search(request).lexical

    return rank


def _fresh_database(url: str) -> tuple[str, Callable[[], None]]:
    """A scratch database next to ``url``'s (same server), and a function that drops it."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop


def _tsvector_rankers(url: str, chunks: list[IndexableChunk], tenant: str) -> dict[str, Ranker]:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {TS_TABLE}"))
        conn.execute(text(f"CREATE TABLE {TS_TABLE} (chunk_id bigint PRIMARY KEY, tsv tsvector NOT NULL)"))
        conn.execute(
            text(f"INSERT INTO {TS_TABLE} VALUES (:id, to_tsvector('english', :body))"),
            [
                {"id": c.chunk_id, "body": fold_for_index(contextual_text(c.title, c.heading_path, c.text))}
                for c in chunks
                if c.tenant_id == tenant
            ],
        )
        conn.execute(text(f"CREATE INDEX ON {TS_TABLE} USING gin (tsv)"))
        conn.execute(text(f"ANALYZE {TS_TABLE}"))

    def ranker(rank: str, norm: int) -> Ranker:
        statement = text(TS_QUERY.format(rank=rank, norm=f", {norm}" if norm else ""))

        def run(query: str) -> list[ScoredId]:
            with engine.connect() as conn:
                rows = conn.execute(statement, {"query": query, "depth": DEPTH}).all()
            return [(int(chunk_id), float(score)) for chunk_id, score in rows]

        return run

    return {
        "tsvector + ts_rank": ranker("ts_rank", 0),
        "tsvector + ts_rank, normalised by 1 + log(length)": ranker("ts_rank", 1),
        "tsvector + ts_rank_cd": ranker("ts_rank_cd", 0),
        "tsvector + ts_rank_cd, normalised by 1 + log(length)": ranker("ts_rank_cd", 1),
    }


def run(database_url: str, beir: Path, split: str) -> dict[str, Any]:
    settings = Settings()
    tenant = settings.tenant
    where = filter_for(Principal(tenant=tenant, admin=True))
    dataset = load_beir(beir, split)
    store = Store(database_url)
    ids = store.all_chunk_ids()
    chunks = store.indexable_chunks(ids)
    doc_of = {}
    with store.connection() as conn:
        for chunk_id, source in conn.execute(
            text("SELECT c.id, d.source FROM chunks c JOIN documents d ON d.id = c.doc_id")
        ):
            doc_of[int(chunk_id)] = str(source).removeprefix(SOURCE_PREFIX)
    print(f"{len(chunks)} chunks, {len(dataset.queries)} {split} queries", flush=True)

    as_ingested = PostgresBackend(database_url)
    embedder = create_embedder(settings.embedder, query_precision=settings.query_precision)
    dense: dict[str, list[ScoredId]] = {}
    for query_id, query in dataset.queries.items():
        vector = np.asarray(embedder.embed_query(query))
        request = SearchRequest(text="", vector=vector, where=where, depth=DEPTH)
        dense[query_id] = as_ingested.search(request).dense

    rows: list[dict[str, Any]] = []

    def measure(name: str, ranker: Ranker) -> None:
        rows.append(_measure(name, ranker, dataset.queries, dataset.qrels, dense, doc_of, settings))

    default = f"BM25 as sparsevec, as ingested, candidates from terms in at most {COMMON_TERMS:.0%} of chunks"
    measure(f"{default} (fathom's postgres backend)", _backend_ranker(as_ingested, where))
    for common in (1.0, 0.25, 0.1, 0.02):
        variant = PostgresBackend(database_url, common_terms=common)
        name = f"BM25 as sparsevec, as ingested, candidates from terms in at most {common:.0%} of chunks"
        measure(name, _backend_ranker(variant, where))
        variant.close()
    scratch_url, drop = _fresh_database(database_url)
    try:
        rebuilt = PostgresBackend(scratch_url)
        rebuilt.apply({}, chunks, 1)
        measure(
            "BM25 as sparsevec, rebuilt in one batch (exact average length)", _backend_ranker(rebuilt, where)
        )
        rebuilt.close()
        for name, ranker in _tsvector_rankers(scratch_url, chunks, tenant).items():
            measure(name, ranker)
    finally:
        drop()
    with tempfile.TemporaryDirectory() as folder:
        reference = EmbeddedBackend(Path(folder), exact_below=settings.exact_search_below)
        reference.apply({}, chunks, 1)
        measure("tantivy BM25 (embedded backend), reference", _backend_ranker(reference, where))
        reference.close()
    as_ingested.close()
    store.close()
    return {
        "command": "python -m bench.pg_lexical --database-url URL",
        "dataset": beir.name,
        "split": split,
        "queries": len(dataset.queries),
        "chunks": len(chunks),
        "depth": DEPTH,
        "machine": machine_info(),
        "rows": rows,
    }


def table(result: dict[str, Any]) -> str:
    """The Markdown table of a result, for docs/scale.md."""
    lines = [
        "| lexical ranking | lexical nDCG@10 | lexical Recall@100 | fused nDCG@10 | lexical p50 / p95 |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['variant']} | {row['lexical_ndcg@10']:.4f} | {row['lexical_recall@100']:.4f} |"
            f" {row['hybrid_ndcg@10']:.4f} | {row['lexical_p50_ms']:.1f} / {row['lexical_p95_ms']:.1f} ms |"
        )
    machine = result["machine"]
    lines.append("")
    lines.append(
        f"SciFact {result['split']}, {result['queries']} queries, {result['chunks']} chunks, depth "
        f"{result['depth']}; machine: {machine['cores']} cores, {machine['cpu']}. Latency is one lexical "
        "query (SQL round trip included), measured on a shared machine: compare rows, not absolutes."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    parser.add_argument("--split", default="train")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = run(args.database_url, args.beir, args.split)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    replace_between_markers(DOC, MARKER, table(result))
    print(f"wrote {args.out} and the table in {DOC}")


if __name__ == "__main__":
    main()
