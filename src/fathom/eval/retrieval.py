"""``fathom eval retrieval``: quality and per-query latency on a BEIR collection.

The corpus is ingested once into a scratch home that is reused while the corpus and
every setting that shapes its chunks and vectors are unchanged; then every query of
the split runs through the same :meth:`fathom.Fathom.search` users call, query
embedding included, and is scored against the judgements.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from fathom.api import Fathom
from fathom.domain import Hit, TextDocument
from fathom.embed.base import Embedder
from fathom.errors import ConfigError
from fathom.eval.beir import BeirDataset, corpus_fingerprint, iter_corpus, load_beir
from fathom.eval.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from fathom.llm.base import EXTRACTIVE

__all__ = ["RetrievalReport", "default_eval_home", "evaluate_retrieval", "open_eval_home", "ranked_documents"]

log = structlog.get_logger(__name__)

SOURCE_PREFIX = "beir/"
# Settings that change what the eval home holds; any change builds a new home.
_INDEX_SETTINGS = ("embedder", "chunk_tokens", "chunk_overlap")
_MARKER = "eval-home.json"
_WARMUP_QUERIES = 5

# Called with ("ingest" | "query", completed, total).
EvalProgress = Callable[[str, int, int], None]


@dataclass(slots=True)
class RetrievalReport:
    """Averages over the split's queries, latency percentiles, and where per-query rows went."""

    dataset: str
    split: str
    queries: int
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    p50_ms: float
    p95_ms: float
    home: str
    per_query_path: str
    settings: dict[str, Any] = field(default_factory=dict)
    query_transform: str = "none"
    transform_fallbacks: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: the issue's keys first, then context."""
        return {
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "queries": self.queries,
            "dataset": self.dataset,
            "split": self.split,
            "home": self.home,
            "per_query": self.per_query_path,
            "settings": self.settings,
            "query_transform": self.query_transform,
            "transform_fallbacks": self.transform_fallbacks,
        }


def default_eval_home(root: Path) -> Path:
    """``$XDG_CACHE_HOME/fathom/eval/<dataset>-<corpus hash>`` (``~/.cache/...`` by default).

    The corpus hash is in the name so two collections whose folders share a name (two folders
    called ``beir``) each keep their own home instead of rebuilding one another's.
    """
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache else Path.home() / ".cache"
    return base / "fathom" / "eval" / f"{root.name}-{corpus_fingerprint(root)[:12]}"


def _fingerprint(root: Path, fathom_settings: dict[str, Any]) -> dict[str, Any]:
    wanted = {"corpus_sha256": corpus_fingerprint(root), **{k: fathom_settings[k] for k in _INDEX_SETTINGS}}
    if fathom_settings.get("database_url"):
        # The corpus lives in that database, not in the home: another database is another home
        # (hashed, so no password lands in the marker).
        url = str(fathom_settings["database_url"]).encode("utf-8")
        wanted["database"] = hashlib.sha256(url).hexdigest()[:16]
    return wanted


def open_eval_home(
    root: Path,
    home: Path,
    *,
    embedder: Embedder | None = None,
    progress: EvalProgress | None = None,
    **overrides: Any,
) -> Fathom:
    """A fathom home holding the BEIR corpus at ``root``, built now unless already complete."""
    fathom = Fathom(home=home, embedder=embedder, **overrides)
    settings = fathom.settings.model_dump()
    wanted = _fingerprint(root, settings)
    marker = home / _MARKER
    marker_existed = marker.is_file()
    if marker_existed and json.loads(marker.read_text(encoding="utf-8")) == wanted:
        return fathom
    marker.unlink(missing_ok=True)
    try:
        _clear_previous_corpus(fathom, built=marker_existed)
    except ConfigError:
        fathom.close()
        raise
    total = sum(1 for _ in iter_corpus(root))
    done = 0

    def documents() -> Iterator[TextDocument]:
        for doc_id, title, text in iter_corpus(root):
            yield TextDocument(source=SOURCE_PREFIX + doc_id, text=text or title, title=title or None)

    def on_progress(event: str, amount: int) -> None:
        nonlocal done
        if event == "file" and progress is not None:
            done += amount
            progress("ingest", done, total)

    report = fathom.ingest_texts(documents(), progress=on_progress)
    if not report.ok:
        first = report.failed[0]
        fathom.close()
        raise RuntimeError(f"{len(report.failed)} corpus documents failed to ingest (first: {first.message})")
    marker.write_text(json.dumps(wanted, indent=2), encoding="utf-8")
    return fathom


def _clear_previous_corpus(fathom: Fathom, *, built: bool) -> None:
    """Delete what an earlier build left in the home, so a rebuild ranks only the new corpus.

    Re-ingesting over a previous corpus would keep its documents that the new one lacks (and
    its chunks wherever the text is unchanged but the chunk settings are not). A home that
    holds other documents and was never an evaluation home is refused rather than emptied.

    Raises:
        ConfigError: the home holds documents that no evaluation put there.
    """
    tenant = fathom.settings.tenant
    documents = fathom.store.list_documents(tenant)
    if not documents:
        return
    if not built and any(not doc.source.startswith(SOURCE_PREFIX) for doc, _chunks in documents):
        raise ConfigError(
            f"the evaluation home {fathom.home} holds documents that are not an evaluation corpus; "
            "choose an empty folder with --eval-home",
            code="eval.home_in_use",
        )
    for doc, _chunks in documents:
        fathom.store.delete_document(tenant, doc.id)
    fathom.indexer.catch_up()
    log.info("eval.home_cleared", documents=len(documents))


def ranked_documents(hits: Sequence[Hit]) -> list[str]:
    """Corpus ids of the hits' documents, best first, each once (a document ranks by its best chunk)."""
    seen: dict[str, None] = {}
    for hit in hits:
        if hit.source.startswith(SOURCE_PREFIX):
            seen.setdefault(hit.source[len(SOURCE_PREFIX) :], None)
    return list(seen)


@dataclass(frozen=True, slots=True)
class _QueryRow:
    query_id: str
    query: str
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    latency_ms: float
    top10: list[str]
    relevant: dict[str, int]
    transform: dict[str, Any] | None = None


def evaluate_retrieval(
    root: str | Path,
    *,
    split: str = "test",
    home: str | Path | None = None,
    embedder: Embedder | None = None,
    progress: EvalProgress | None = None,
    per_query_path: str | Path | None = None,
    **overrides: Any,
) -> RetrievalReport:
    """Ingest (or reuse) the corpus, run every query of ``split`` and score it.

    Latency is wall time of :meth:`Fathom.search` per query after a few warm-up
    queries, query embedding included (the query-embedding cache is cleared first so
    no query is served from it). With a ``query_transform`` setting every query goes
    through the transform first, the model's time included; queries whose transform fell
    back are counted by code in ``transform_fallbacks``.

    Raises:
        ConfigError: a query transform is asked for but no LLM is configured.
    """
    dataset: BeirDataset = load_beir(root, split)
    eval_home = Path(home).expanduser().resolve() if home else default_eval_home(dataset.root)
    fathom = open_eval_home(dataset.root, eval_home, embedder=embedder, progress=progress, **overrides)
    if fathom.settings.query_transform != "none" and fathom.settings.llm == EXTRACTIVE:
        fathom.close()
        raise ConfigError(
            f"query transform {fathom.settings.query_transform!r} needs an LLM: set FATHOM_LLM "
            "(and FATHOM_LLM_BASE_URL for a local server such as Ollama or vLLM)",
            code="eval.no_llm",
        )
    try:
        rows = _run_queries(fathom, dataset, progress)
        settings = {
            key: value
            for key, value in fathom.settings.model_dump(mode="json").items()
            if key not in {"home", "database_url", "log_level", "log_json"}
        }
    finally:
        fathom.close()
    out = Path(per_query_path) if per_query_path else eval_home / "runs" / f"{split}-{int(time.time())}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(asdict(row)) + "\n")
    latencies = [row.latency_ms for row in rows]
    count = max(len(rows), 1)
    fallbacks: dict[str, int] = {}
    for row in rows:
        code = row.transform.get("fallback") if row.transform else None
        if code:
            fallbacks[code] = fallbacks.get(code, 0) + 1
    return RetrievalReport(
        dataset=dataset.root.name,
        split=split,
        queries=len(rows),
        ndcg_at_10=sum(r.ndcg_at_10 for r in rows) / count,
        recall_at_100=sum(r.recall_at_100 for r in rows) / count,
        mrr_at_10=sum(r.mrr_at_10 for r in rows) / count,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        home=str(eval_home),
        per_query_path=str(out),
        settings=settings,
        query_transform=str(settings.get("query_transform", "none")),
        transform_fallbacks=fallbacks,
    )


def _run_queries(fathom: Fathom, dataset: BeirDataset, progress: EvalProgress | None) -> list[_QueryRow]:
    queries = list(dataset.queries.items())
    # Warm-up queries that are not in the split, so no measured query hits the embedding cache.
    for number in range(_WARMUP_QUERIES):
        fathom.search_traced(f"warm up query number {number} for the evaluation", k=100)
    rows: list[_QueryRow] = []
    for number, (query_id, text) in enumerate(queries, start=1):
        started = time.perf_counter()
        result = fathom.search_traced(text, k=100)
        latency_ms = (time.perf_counter() - started) * 1000
        hits = result.hits
        ranking = ranked_documents(hits)
        relevant = dataset.qrels[query_id]
        rows.append(
            _QueryRow(
                query_id=query_id,
                query=text,
                ndcg_at_10=ndcg_at_k(ranking, relevant, 10),
                recall_at_100=recall_at_k(ranking, relevant, 100),
                mrr_at_10=mrr_at_k(ranking, relevant, 10),
                latency_ms=latency_ms,
                top10=ranking[:10],
                relevant=relevant,
                transform=result.transform.to_dict() if result.transform else None,
            )
        )
        if progress is not None:
            progress("query", number, len(queries))
    return rows
