"""The Python API. Every front (CLI, and later HTTP, MCP, web) is a thin layer over it."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from fathom.answer.cache import AnswerCache, CacheScope, DocumentVersion
from fathom.answer.extractive import ExtractiveAnswerer
from fathom.answer.generate import LLMAnswerer
from fathom.answer.prompts import PROMPT_VERSION
from fathom.answer.usage import TokenLedger
from fathom.answer.verify import Verifier
from fathom.config import Settings, load_settings
from fathom.domain import (
    Answer,
    AnswerDelta,
    DocumentInfo,
    FileOutcome,
    Hit,
    IngestReport,
    JobInfo,
    Passage,
    Principal,
    QueryTransformTrace,
    SearchResult,
    Section,
    StoreStatus,
    TextDocument,
    contextual_text,
    page_at,
)
from fathom.embed.base import Embedder, create_embedder
from fathom.errors import (
    ConfigError,
    Conflict,
    FathomError,
    InvalidQuery,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    StorageFull,
)
from fathom.index.base import IndexFilter
from fathom.index.catchup import IndexSet, Progress
from fathom.index.dense import UsearchIndex
from fathom.index.lexical import TantivyIndex, analyze
from fathom.ingest.fetch import FetchLimits, fetch_url
from fathom.ingest.pipeline import IngestPipeline, ProgressCallback, iter_files, parse_limits, parse_options
from fathom.ingest.sandbox import ParserPool
from fathom.llm.base import EXTRACTIVE, create_provider
from fathom.logs import configure_logging
from fathom.rerank.base import create_reranker
from fathom.retrieve.dedupe import collapse_near_duplicates
from fathom.retrieve.hybrid import HybridRetriever, RetrievalTrace
from fathom.retrieve.transform import QueryTransformer, transform_note
from fathom.store.database import Store, check_write
from fathom.store.feedback import FeedbackLog
from fathom.store.jobs import ClaimedJob, JobQueue, NewJob, acl_pair
from fathom.store.keys import KeyRegistry
from fathom.store.schema import DocumentRow

__all__ = ["Fathom"]

log = structlog.get_logger(__name__)

# Called with a pipeline stage name ("lexical", "dense", "retrieve", "answer") and its seconds.
StageObserver = Callable[[str, float], None]
_DELTA_PIECES = re.compile(r"\S+\s*")


class Fathom:
    """An embedded fathom: a store of record and its indexes under one home folder.

    Args:
        home: data folder; default ``$FATHOM_HOME`` or ``~/.local/share/fathom``.
        settings: a complete settings object (``home`` and overrides are then ignored).
        embedder: an already-loaded embedder to share between instances (tests, servers),
            or an embedder setting such as ``"hash:256"``.
        **overrides: any setting by name, e.g. ``chunk_tokens=200``.

    The embedding model loads on first use, so status and delete stay fast.
    """

    def __init__(
        self,
        home: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | str | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(embedder, str):
            overrides["embedder"], embedder = embedder, None
        self.settings = settings or load_settings(home, **overrides)
        configure_logging(self.settings.log_level, json_lines=self.settings.log_json)
        self.home = self.settings.home
        self.home.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.settings.resolved_database_url, lock_dir=self.home)
        index_dir = self.settings.index_dir
        self.indexes = IndexSet(
            self.store,
            TantivyIndex(
                index_dir / "lexical",
                title_boost=self.settings.title_boost,
                heading_boost=self.settings.heading_boost,
                context_in_body=self.settings.lexical_context,
            ),
            UsearchIndex(
                index_dir / "dense.usearch",
                exact_below=self.settings.exact_search_below,
                journal_limit=self.settings.dense_journal_limit,
                threads=self.settings.index_threads,
            ),
            lock_path=index_dir / "catchup.lock",
        )
        self._embedder = embedder
        self._retriever: HybridRetriever | None = None
        self._answerer: ExtractiveAnswerer | None = None
        self._llm: LLMAnswerer | None = None
        self._transformer: QueryTransformer | None = None
        self.ledger = TokenLedger(self.settings.tenant_token_budgets)
        self._cache = AnswerCache(
            self.settings.answer_cache_size, self.settings.answer_cache_similarity, self._document_version
        )
        self.keys = KeyRegistry(self.store)
        self.jobs = JobQueue(
            self.store,
            lease_seconds=self.settings.job_lease_seconds,
            max_attempts=self.settings.job_max_attempts,
            tenant_max_running=self.settings.job_tenant_max_running,
            tenant_max_queued_bytes=self.settings.job_tenant_max_queued_bytes,
        )
        self.feedback_log = FeedbackLog(self.store)
        self.stage_observer: StageObserver | None = None
        self._parsers: ParserPool | None = None
        try:
            self.indexes.catch_up()
        except (ConfigError, StorageFull) as exc:
            # E.g. the embedder changed dimension: stay openable so `reindex` can repair it;
            # ingest and search raise the same clear error until then. A full disk: reads
            # search the indexes as they stand until space is freed.
            log.warning("index.catch_up_failed", code=exc.code)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = create_embedder(
                self.settings.embedder,
                device=self.settings.device,
                batch_size=self.settings.embed_batch_size,
                query_precision=self.settings.query_precision,
            )
        return self._embedder

    @property
    def _hybrid(self) -> HybridRetriever:
        if self._retriever is None:
            reranker = (
                create_reranker(self.settings.reranker, device=self.settings.device)
                if self.settings.reranker
                else None
            )
            self._retriever = HybridRetriever(self.indexes, self.embedder, self.settings, reranker)
        return self._retriever

    @property
    def parsers(self) -> ParserPool:
        """The parser worker pool (started on first use)."""
        if self._parsers is None:
            self._parsers = ParserPool(
                self.settings.parser_workers, parse_limits(self.settings), parse_options(self.settings)
            )
        return self._parsers

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
        if self._retriever is not None:
            self._retriever.close()
        if self._parsers is not None:
            self._parsers.close()
        self.store.close()

    def __enter__(self) -> Fathom:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _principal(self, principal: Principal | None) -> Principal:
        return principal or Principal(tenant=self.settings.tenant, admin=True)

    # -- writing --------------------------------------------------------------------------

    def ingest(
        self,
        paths: Iterable[str | Path],
        *,
        metadata: Mapping[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Ingest files, folders (recursively) and http(s) URLs. Unchanged files are skipped.

        Returns a report with one outcome per file or URL; failures never stop the batch.
        """
        files: list[Path] = []
        missing: list[FileOutcome] = []
        urls: list[str] = []
        for raw in paths:
            if isinstance(raw, str) and "://" in raw:
                urls.append(raw)
                continue
            path = Path(raw).expanduser()
            if not path.exists():
                missing.append(
                    FileOutcome(
                        str(path.resolve()),
                        "failed",
                        error_code="ingest.not_found",
                        message="no such file or folder",
                    )
                )
                continue
            files.extend(iter_files(path))
        report = self._ingest_files(files, metadata=metadata, progress=progress, missing=missing)
        for url in urls:
            report.outcomes.append(self.ingest_url(url, metadata=metadata))
        return report

    def ingest_url(self, url: str, *, metadata: Mapping[str, Any] | None = None) -> FileOutcome:
        """Fetch an http(s) URL and ingest it under the URL as its source.

        Every redirect hop is checked against private, loopback, link-local and metadata
        addresses (see the ``url_allow`` setting); size and time are limited. A refused or
        failed fetch is an outcome with a ``url.*`` error code, never an exception.
        """
        settings = self.settings
        limits = FetchLimits(
            allow=tuple(settings.url_allow),
            max_bytes=min(settings.url_max_bytes, settings.max_file_bytes),
            timeout_seconds=settings.url_timeout_seconds,
            max_redirects=settings.url_max_redirects,
        )
        try:
            fetched = fetch_url(url, limits)
        except FathomError as exc:
            return FileOutcome(url, "failed", error_code=exc.code, message=exc.message)
        meta = {**(metadata or {}), "url": fetched.url}
        outcome = self._pipeline().ingest_bytes(
            fetched.data, source=url, tenant=settings.tenant, metadata=meta, name=fetched.name
        )
        self.indexes.catch_up()
        return outcome

    def _ingest_files(
        self,
        files: list[Path],
        *,
        metadata: Mapping[str, Any] | None,
        progress: ProgressCallback | None,
        missing: list[FileOutcome] | None = None,
    ) -> IngestReport:
        missing = missing or []
        if progress is not None:
            progress("files_total", len(files) + len(missing))
            for _ in missing:
                progress("file", 1)
        report = self._pipeline().ingest_files(
            files,
            tenant=self.settings.tenant,
            metadata=dict(metadata or {}),
            progress=progress,
            after_commit=self.indexes.catch_up,
        )
        report.outcomes[:0] = missing
        return report

    def ingest_text(
        self,
        text: str,
        *,
        source: str,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> FileOutcome:
        """Ingest a document given as text (format detected from content, e.g. Markdown)."""
        outcome = self._pipeline().ingest_bytes(
            text.encode("utf-8"),
            source=source,
            tenant=self.settings.tenant,
            title=title,
            metadata=dict(metadata or {}),
        )
        self.indexes.catch_up()
        return outcome

    def ingest_texts(
        self, documents: Iterable[TextDocument], *, progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Ingest many documents given as text, embedded in batches (unchanged ones are skipped)."""
        return self._pipeline().ingest_texts(
            documents, tenant=self.settings.tenant, progress=progress, after_commit=self.indexes.catch_up
        )

    def delete(self, source_or_id: str, *, principal: Principal | None = None) -> str:
        """Delete a document by its source (a path is resolved) or its id; returns the doc id.

        Only admins delete; a document the principal may not read does not exist for it.

        Raises:
            NotFound: no such document, or one the principal may not read.
            PermissionDenied: the principal may read the document but is not an admin.
        """
        who = self._principal(principal)
        tenant = who.tenant
        doc = self.store.get_document(tenant, source_or_id) or self.store.find_document(tenant, source_or_id)
        if doc is None and not source_or_id.startswith(("http://", "https://")):
            doc = self.store.find_document(tenant, str(Path(source_or_id).expanduser().resolve()))
        if doc is None or not who.can_read(doc.tenant_id, doc.acl_users or (), doc.acl_groups or ()):
            raise NotFound(f"no document {source_or_id!r}", code="document.not_found")
        if not who.admin:
            raise PermissionDenied("only an admin key may delete documents", code="document.delete_denied")
        if not self.store.delete_document(tenant, doc.id):
            raise NotFound(f"no document {source_or_id!r}", code="document.not_found")
        self.indexes.catch_up()
        return doc.id

    # -- ingestion jobs (the HTTP service's writes) -----------------------------------------

    def submit_document(
        self,
        content: bytes,
        *,
        source: str,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        acl_users: Sequence[str] = (),
        acl_groups: Sequence[str] = (),
        principal: Principal | None = None,
        idempotency: tuple[str, str, str] | None = None,
    ) -> tuple[JobInfo, bool]:
        """Queue a document for ingestion; a worker (:meth:`run_job`) commits it later.

        An empty ACL makes the document readable by the whole tenant. A new document is owned
        by the principal's user; replacing an existing one (or its ACL) needs its owner or an
        admin, checked here and again when the worker commits. Returns the job and whether it
        is new (False when ``idempotency`` matched an earlier request).

        Raises:
            LimitExceeded: the content is larger than ``max_upload_bytes``, or the tenant's
                waiting uploads would pass ``job_tenant_max_queued_bytes``.
            Conflict: the source belongs to a document the principal may not read, or the
                idempotency key was used for another request.
            PermissionDenied: the principal may read the document at ``source`` but neither
                owns it nor is an admin (``document.write_denied``).
        """
        who = self._principal(principal)
        if len(content) > self.settings.max_upload_bytes:
            raise LimitExceeded(
                f"the document is larger than the {self.settings.max_upload_bytes} byte limit",
                code="upload.too_large",
            )
        existing = self.store.find_document(who.tenant, source)
        users, groups = acl_pair(acl_users, acl_groups)
        if existing is not None:
            # The same text with the same ACL changes nothing (the job finds it unchanged), so any
            # reader may send it again: text uploaded without a source is stored once.
            check_write(who, existing, changes=not _same_document(existing, content, users, groups))
        job = NewJob(
            tenant=who.tenant,
            owner_user=who.user,
            owner_groups=who.groups,
            owner_admin=who.admin,
            source=source,
            title=title,
            content=content,
            metadata=dict(metadata or {}),
            acl_users=users,
            acl_groups=groups,
        )
        return self.jobs.enqueue(job, idempotency=idempotency)

    def run_job(self, job: ClaimedJob) -> FileOutcome:
        """Ingest a claimed job's document (one transaction) and bring the indexes up to date.

        The document is written as the job's submitter: when it may no longer replace the
        document at the job's source, the job fails with the same code as an upload would and
        nothing is written.
        """
        try:
            outcome = self._pipeline().ingest_bytes(
                job.content,
                source=job.source,
                tenant=job.tenant,
                title=job.title,
                metadata=job.metadata,
                acl_users=job.acl_users,
                acl_groups=job.acl_groups,
                doc_id=job.document_id,
                principal=job.submitter,
            )
        except (Conflict, PermissionDenied) as exc:
            return FileOutcome(job.source, "failed", error_code=exc.code, message=exc.message)
        self.indexes.catch_up()
        return outcome

    def job(self, job_id: str, *, principal: Principal | None = None) -> JobInfo:
        """A job's state, for its submitter, an admin, or a reader of its document.

        Raises:
            NotFound: no such job, or one the principal may not see.
        """
        who = self._principal(principal)
        found = self.jobs.get(job_id)
        if found is not None:
            info, row = found
            own = who.tenant == row.tenant_id and who.user is not None and row.owner_user == who.user
            if own or who.can_read(row.tenant_id, row.acl_users or (), row.acl_groups or ()):
                return self.jobs.progress(info, row)
        raise NotFound(f"no job {job_id!r}", code="job.not_found")

    def sync(self, directory: str | Path, *, progress: ProgressCallback | None = None) -> IngestReport:
        """Make the store mirror a folder: add new files, update changed ones, delete removed ones."""
        root = Path(directory).expanduser().resolve()
        if not root.is_dir():
            raise NotFound(f"no folder {str(directory)!r}", code="sync.not_a_folder")
        files = list(iter_files(root))
        report = self._ingest_files(files, metadata=None, progress=progress)
        present = {str(path.resolve()) for path in files if path.exists()}
        prefix = str(root) + os.sep
        for doc, _chunks in self.store.list_documents(self.settings.tenant, source_prefix=prefix):
            if doc.source not in present:
                self.store.delete_document(self.settings.tenant, doc.id)
                report.outcomes.append(FileOutcome(doc.source, "deleted", doc_id=doc.id))
        self.indexes.catch_up()
        return report

    def watch(
        self,
        directory: str | Path,
        on_report: Callable[[IngestReport], object],
        *,
        stop: threading.Event | None = None,
    ) -> None:
        """Mirror a folder continuously until ``stop`` is set (or the process is interrupted).

        Starts with a full :meth:`sync`, which is also what makes watching resumable: after
        a crash, the next start reconciles whatever changed meanwhile (unchanged files are
        skipped by content hash, each document commits alone). Then every burst of
        changes (create, modify, rename, delete), once quiet for ``sync_debounce_ms``, is
        applied and reported through ``on_report``.
        """
        import watchfiles

        root = Path(directory).expanduser().resolve()
        on_report(self.sync(root))
        prefix = str(root) + os.sep
        for changes in watchfiles.watch(
            root,
            debounce=self.settings.sync_debounce_ms,
            step=min(50, max(1, self.settings.sync_debounce_ms)),
            stop_event=stop,
            recursive=True,
            raise_interrupt=False,
        ):
            touched: set[Path] = set()
            for _change, raw in changes:
                path = Path(raw)
                relative = path.relative_to(root) if path.is_relative_to(root) else path
                if any(part.startswith(".") for part in relative.parts):
                    continue
                touched.add(path)
            if touched:
                on_report(self._apply_changes(touched, prefix))

    def _apply_changes(self, paths: set[Path], prefix: str) -> IngestReport:
        """Ingest the changed paths that exist; delete documents of those that are gone."""
        existing: list[Path] = []
        for path in sorted(paths):
            if path.is_dir():
                existing.extend(iter_files(path))
            elif path.is_file():
                existing.append(path)
        report = self._ingest_files(existing, metadata=None, progress=None)
        tenant = self.settings.tenant
        gone = {str(p) for p in paths if not p.exists()}
        if gone:
            for doc, _chunks in self.store.list_documents(tenant, source_prefix=prefix):
                if doc.source in gone or any(doc.source.startswith(g + os.sep) for g in gone):
                    self.store.delete_document(tenant, doc.id)
                    report.outcomes.append(FileOutcome(doc.source, "deleted", doc_id=doc.id))
            self.indexes.catch_up()
        return report

    def reindex(self, progress: Progress | None = None) -> None:
        """Rebuild every index from the store of record (re-embedding if the model changed)."""
        stale = self.store.chunks_needing_embedding(self.embedder.name)
        if stale:
            vectors = self.embedder.embed_documents(
                [contextual_text(title, path, text) for _id, text, title, path, _hash in stale]
            )
            self.store.set_embeddings(
                self.embedder.name, {row[0]: v for row, v in zip(stale, vectors, strict=True)}
            )
        self.indexes.rebuild(progress)

    def _pipeline(self) -> IngestPipeline:
        return IngestPipeline(self.store, self.embedder, self.settings, self.parsers)

    # -- reading --------------------------------------------------------------------------

    def _filter(self, principal: Principal, filters: Mapping[str, str] | None) -> IndexFilter:
        terms = tuple(f"{key}={value}" for key, value in sorted((filters or {}).items()))
        return IndexFilter(
            tenant=principal.tenant,
            acl_tokens=None if principal.admin else tuple(principal.acl_tokens()),
            metadata=terms,
        )

    def _check_query(self, query: str) -> str:
        query = query.strip()
        if not query:
            raise InvalidQuery("the query is empty", code="query.empty")
        if len(query) > self.settings.max_query_chars:
            raise InvalidQuery(
                f"the query is longer than {self.settings.max_query_chars} characters", code="query.too_long"
            )
        return query

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        filters: Mapping[str, str] | None = None,
        principal: Principal | None = None,
        transform: bool = False,
    ) -> list[Hit]:
        """Hybrid search: the ``k`` best chunks the principal may read, best first.

        ``filters`` match document metadata exactly (``source``, ``type``, ``filename`` and
        any metadata given at ingest). ``transform`` applies the configured
        ``query_transform`` first (when an LLM is configured); :meth:`search_traced` also
        returns what it did.
        """
        return self.search_traced(query, k=k, filters=filters, principal=principal, transform=transform).hits

    def search_traced(
        self,
        query: str,
        *,
        k: int = 10,
        filters: Mapping[str, str] | None = None,
        principal: Principal | None = None,
        transform: bool = True,
    ) -> SearchResult:
        """Like :meth:`search`, with the query transform's trace (``None`` when none ran).

        A transform that fails falls back to the query as given; its trace says why.
        """
        query = self._check_query(query)
        if k < 1:
            raise InvalidQuery("k must be at least 1", code="query.invalid_k")
        who = self._principal(principal)
        where = self._filter(who, filters)
        transformed = self._transform(query, who.tenant) if transform else None
        trace = self._retrieve(query, transformed, where, k * 2)
        self._observe(trace.timings_ms)
        return SearchResult(self._top_hits(trace, k, who.tenant), transformed)

    def _transform(self, question: str, tenant: str) -> QueryTransformTrace | None:
        """The configured query transform of ``question``; None without one or without an LLM."""
        if self.settings.query_transform == "none":
            return None
        llm = self._llm_answerer()
        if llm is None:
            return None
        if self._transformer is None:
            self._transformer = QueryTransformer(self.settings, llm)
        started = time.perf_counter()
        trace = self._transformer.transform(question, tenant=tenant)
        if self.stage_observer is not None:
            self.stage_observer("transform", time.perf_counter() - started)
        return trace

    def _retrieve(
        self, question: str, transform: QueryTransformTrace | None, where: IndexFilter, limit: int
    ) -> RetrievalTrace:
        """Hybrid retrieval for the question as the transform shaped it."""
        if transform is None or not transform.applied:
            return self._hybrid.retrieve(question, where, limit)
        if transform.passage is not None:
            lexical = question
            if self.settings.query_transform_hyde_lexical == "question_and_passage":
                lexical = f"{question}\n{transform.passage}"
            return self._hybrid.retrieve(lexical, where, limit, dense_query=transform.passage)
        return self._hybrid.retrieve_many(transform.queries, where, limit)

    def _top_hits(self, trace: RetrievalTrace, k: int, tenant: str) -> list[Hit]:
        """The ``k`` best fused candidates with near-duplicates collapsed, with page numbers.

        Candidates are read from the store a slice at a time: a few more than ``k`` first,
        more only when collapsing (or a concurrent delete) left fewer than ``k``.
        """
        retriever = self._hybrid
        threshold = self.settings.near_duplicate_threshold
        stop = k + max(4, k // 4)
        fetched = retriever.hits(trace, stop)
        while True:
            hits = collapse_near_duplicates(fetched, threshold, k, retriever.fingerprints)
            if len(hits) >= k or stop >= len(trace.fused):
                break
            fetched += retriever.hits(trace, stop + k, start=stop)
            stop += k
        return hits

    def _observe(self, timings_ms: Mapping[str, float]) -> None:
        if self.stage_observer is None:
            return
        for stage, ms in timings_ms.items():
            self.stage_observer("retrieve" if stage == "total" else stage, ms / 1000)

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Mapping[str, str] | None = None,
        principal: Principal | None = None,
    ) -> Answer:
        """Answer from the documents with cited, verified sentences, or abstain.

        With the default ``llm = "extractive"`` every sentence is a verbatim quote; with an
        LLM configured, generated sentences are kept only when their citations support them.
        """
        final: Answer | None = None
        for item in self.ask_stream(question, k=k, filters=filters, principal=principal):
            if isinstance(item, Answer):
                final = item
        if final is None:  # pragma: no cover - ask_stream always ends with an Answer
            raise RuntimeError("ask_stream ended without an answer")
        return final

    def ask_stream(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Mapping[str, str] | None = None,
        principal: Principal | None = None,
    ) -> Iterator[AnswerDelta | Answer]:
        """Like :meth:`ask`, streamed: answer text pieces as produced, then one final ``Answer``.

        The pieces are the model's raw, unverified text (plain text; escape it when showing
        it as HTML). The final ``Answer`` is verified and is what should be kept: sentences
        that verification removed are absent from it.
        """
        question = self._check_query(question)
        limit = k or self.settings.answer_chunks
        who = self._principal(principal)
        where = self._filter(who, filters)
        llm = self._llm_answerer()
        scope: CacheScope = (
            who.tenant,
            "admin" if who.admin else ",".join(sorted(who.acl_tokens())),
            ",".join(where.metadata),
            str(limit),
            self.settings.llm,
            PROMPT_VERSION,
        )
        looked_up = llm is not None and self.settings.query_transform != "none"
        if looked_up:
            # Look in the answer cache before the transform spends tokens on a known question.
            cached = self._cache.get(scope, question, self.embedder.embed_query(question), reader=who)
            if cached is not None:
                yield cached
                return
        transformed = self._transform(question, who.tenant) if llm is not None else None
        trace = self._retrieve(question, transformed, where, limit * 2)
        self._observe(trace.timings_ms)
        if transformed is not None and transformed.passage is not None:
            # The trace holds the HyDE passage's vector; answers are compared with the question's.
            trace = replace(trace, query_vector=self.embedder.embed_query(question))
        hits = self._top_hits(trace, limit, who.tenant)
        extractive = self._extractive()

        def extract() -> Answer:
            started = time.perf_counter()
            answer = self._with_pages(extractive.answer(question, trace.query_vector, hits), hits)
            if self.stage_observer is not None:
                self.stage_observer("answer", time.perf_counter() - started)
            return answer

        if llm is None:
            # The extractive answer exists all at once; stream it word by word all the same so
            # every front handles one shape of stream.
            answer = extract()
            for piece in _DELTA_PIECES.findall(answer.answer):
                yield AnswerDelta(piece)
            yield answer
            return
        cached = None if looked_up else self._cache.get(scope, question, trace.query_vector, reader=who)
        if cached is not None:
            yield cached
            return
        for item in llm.stream(question, hits, tenant=who.tenant, extractive=extract):
            if isinstance(item, Answer):
                item = _with_transform(item, transformed)
                if not item.abstained and item.model != EXTRACTIVE:
                    self._cache.put(scope, question, trace.query_vector, item)
            yield item

    def _extractive(self) -> ExtractiveAnswerer:
        if self._answerer is None:
            self._answerer = ExtractiveAnswerer(
                self.embedder,
                analyze,
                self.indexes.lexical.document_frequencies,
                max_sentences=self.settings.answer_sentences,
                min_support=self.settings.min_support,
            )
        return self._answerer

    @staticmethod
    def _with_pages(answer: Answer, hits: Sequence[Hit]) -> Answer:
        """The answer with each citation's page number, taken from the hit it quotes (a chunk
        never crosses a page break, so its page is the quote's)."""
        pages = {h.chunk_id: h.page for h in hits if h.page is not None}
        if not pages:
            return answer
        citations = tuple(
            replace(c, page=pages[c.chunk_id]) if c.chunk_id in pages else c for c in answer.citations
        )
        return replace(answer, citations=citations)

    def section(self, doc_id: str, start: int, end: int | None = None) -> Section:
        """The section around ``[start, end)`` of a document: its heading path and full span.

        Lets an answerer expand a small retrieved chunk to its parent section: every
        consecutive chunk under the same heading path as the chunk holding ``start``.

        Raises:
            NotFound: no such document, or the offsets lie outside its chunks.
        """
        tenant = self.settings.tenant
        doc = self.store.get_document(tenant, doc_id)
        spans = self.store.chunk_spans(tenant, doc_id) if doc is not None else []
        index = next((i for i, (a, b, _p) in enumerate(spans) if a <= start < b), None)
        if doc is None or index is None:
            raise NotFound(f"no passage at {start} in document {doc_id!r}", code="document.not_found")
        path = spans[index][2]
        first = last = index
        while first > 0 and spans[first - 1][2] == path:
            first -= 1
        while last + 1 < len(spans) and spans[last + 1][2] == path:
            last += 1
        span_start, span_end = spans[first][0], max(spans[last][1], end or 0)
        pages = self.store.page_starts(tenant, [doc_id])
        return Section(
            doc_id=doc_id,
            source=doc.source,
            title=doc.title,
            heading_path=path,
            start=span_start,
            end=span_end,
            text=doc.text[span_start:span_end],
            page=_page(pages, doc_id, span_start) if doc_id in pages else None,
        )

    def passage(
        self,
        doc_id: str,
        start: int,
        end: int,
        *,
        neighbours: int = 1,
        principal: Principal | None = None,
    ) -> Passage:
        """The quote at ``[start, end)`` of a document in context, for people checking a citation.

        The window is every chunk the quote touches plus ``neighbours`` chunks on each side, with
        the title, heading path and page of the chunk that holds the quote's start.

        Raises:
            NotFound: no such document, one the principal may not read, offsets outside its chunks,
                or an empty range (``end`` not after ``start``: code ``passage.invalid_range``; a
                range addresses no passage, so it is "not found" rather than a malformed request).
            InvalidQuery: ``start`` or ``neighbours`` is negative.
        """
        doc = self._readable(doc_id, principal)  # first: an unreadable document is a 404, whatever else
        if start < 0:
            raise InvalidQuery("start must be 0 or more", code="passage.invalid_range")
        if end <= start:
            raise NotFound("no passage: end must be greater than start", code="passage.invalid_range")
        if neighbours < 0:
            raise InvalidQuery("neighbours must be 0 or more", code="passage.invalid_range")
        spans = self.store.chunk_spans(doc.tenant_id, doc.id)
        index = next((i for i, (a, b, _p) in enumerate(spans) if a <= start < b), None)
        if index is None:
            raise NotFound(f"no passage at {start} in document {doc_id!r}", code="passage.not_found")
        last = index
        while last + 1 < len(spans) and spans[last][1] < end:
            last += 1
        first = max(0, index - neighbours)
        last = min(len(spans) - 1, last + neighbours)
        window_start = spans[first][0]
        window_end = max(b for _a, b, _p in spans[first : last + 1])
        pages = self.store.page_starts(doc.tenant_id, [doc.id])
        return Passage(
            doc_id=doc.id,
            source=doc.source,
            title=doc.title,
            heading_path=spans[index][2],
            page=_page(pages, doc.id, start) if doc.id in pages else None,
            start=window_start,
            end=window_end,
            text=doc.text[window_start:window_end],
            quote_start=start,
            quote_end=min(end, window_end),
            more_before=window_start > 0,
            more_after=window_end < len(doc.text),
        )

    def _llm_answerer(self) -> LLMAnswerer | None:
        settings = self.settings
        if settings.llm == EXTRACTIVE:
            return None
        if self._llm is None:
            specs = [spec for spec in (settings.llm, *settings.llm_fallbacks) if spec != EXTRACTIVE]
            verifier = Verifier(
                self.embedder, analyze, min_support=settings.verify_min_support, policy=settings.verify_policy
            )
            providers = [create_provider(spec, settings) for spec in dict.fromkeys(specs)]
            self._llm = LLMAnswerer(providers, verifier, settings, self.ledger)
        return self._llm

    def _document_version(self, tenant: str, doc_id: str) -> DocumentVersion | None:
        """What a cached answer citing this document depends on: its content and its ACL."""
        doc = self.store.get_document(tenant, doc_id)
        if doc is None:
            return None
        return DocumentVersion(
            doc.content_hash, tuple(sorted(doc.acl_users or ())), tuple(sorted(doc.acl_groups or ()))
        )

    def documents(self, *, principal: Principal | None = None) -> list[DocumentInfo]:
        """Every document of the principal's tenant that it may read, by source."""
        who = self._principal(principal)
        readable = [
            (doc, chunks)
            for doc, chunks in self.store.list_documents(who.tenant)
            if who.can_read(doc.tenant_id, doc.acl_users or (), doc.acl_groups or ())
        ]
        ids = {doc.id for doc, _chunks in readable}
        return [_document_info(doc, chunks, ids.__contains__) for doc, chunks in readable]

    def document(self, doc_id: str, *, principal: Principal | None = None) -> DocumentInfo:
        """One document's details, without its text.

        Raises:
            NotFound: no such document, or one the principal may not read.
        """
        doc = self._readable(doc_id, principal)
        chunks = self.store.counts_for_document(doc.id)
        return _document_info(doc, chunks, lambda other: self._may_read(other, principal))

    def document_text(self, doc_id: str, *, principal: Principal | None = None) -> str:
        """The extracted text of a document: the text every offset and quote refers to."""
        return self._readable(doc_id, principal).text

    def _may_read(self, doc_id: str, principal: Principal | None) -> bool:
        try:
            self._readable(doc_id, principal)
        except NotFound:
            return False
        return True

    def _readable(self, doc_id: str, principal: Principal | None) -> DocumentRow:
        who = self._principal(principal)
        doc = self.store.get_document(who.tenant, doc_id)
        if doc is None or not who.can_read(doc.tenant_id, doc.acl_users or (), doc.acl_groups or ()):
            raise NotFound(f"no document {doc_id!r}", code="document.not_found")
        return doc

    # -- feedback -------------------------------------------------------------------------

    def record_answer(
        self, answer: Answer, *, principal: Principal | None = None, key_id: str | None = None
    ) -> str:
        """Remember that the principal received ``answer`` (ids only) through the API key
        ``key_id`` (None outside the service); returns its answer id."""
        return self.feedback_log.record_answer(
            self._principal(principal),
            abstained=answer.abstained,
            cited_doc_ids=[c.doc_id for c in answer.citations],
            key_id=key_id,
        )

    def add_feedback(
        self,
        answer_id: str,
        rating: str,
        comment: str | None = None,
        *,
        principal: Principal | None = None,
        key_id: str | None = None,
    ) -> str:
        """Rate an answer the principal received ("up" or "down"); returns the feedback id
        (random hex, unrelated to other feedback).

        A principal without a user counts as having received only the answers recorded with
        its own ``key_id``.

        Raises:
            NotFound: no such answer, or one given to someone else.
            InvalidQuery: the rating is not "up" or "down".
        """
        if rating not in ("up", "down"):
            raise InvalidQuery("rating must be 'up' or 'down'", code="feedback.invalid_rating")
        return self.feedback_log.add(self._principal(principal), answer_id, rating, comment, key_id=key_id)

    def status(self) -> StoreStatus:
        """Counts, index positions and disk use of this home."""
        documents, chunks = self.store.counts()
        disk = sum(p.stat().st_size for p in self.home.rglob("*") if p.is_file())
        return StoreStatus(
            home=str(self.home),
            database=self.store.engine.url.render_as_string(hide_password=True),
            documents=documents,
            chunks=chunks,
            last_sequence=self.store.last_sequence(),
            index_positions={index.name: index.applied_sequence() for index in self.indexes.indexes},
            index_chunks={index.name: index.size() for index in self.indexes.indexes},
            disk_bytes=disk,
            embedder=self.settings.embedder,
        )


def _document_info(doc: DocumentRow, chunks: int, readable: Callable[[str], bool]) -> DocumentInfo:
    """A document's details for a reader; ``readable`` says which other documents it may read.

    The ``near_duplicate_of`` link is shown only when the reader may read the document it names:
    the id of a document hidden from the reader is never revealed.
    """
    metadata = dict(doc.metadata_ or {})
    linked = metadata.get("near_duplicate_of")
    if linked is not None and not (isinstance(linked, str) and readable(linked)):
        del metadata["near_duplicate_of"]
    return DocumentInfo(
        doc_id=doc.id,
        source=doc.source,
        title=doc.title,
        mime_type=doc.mime_type,
        content_hash=doc.content_hash,
        chunks=chunks,
        metadata=metadata,
        created_at=doc.created_at.isoformat(),
        updated_at=doc.updated_at.isoformat(),
        acl_users=tuple(doc.acl_users or ()),
        acl_groups=tuple(doc.acl_groups or ()),
    )


def _same_document(doc: DocumentRow, content: bytes, users: Sequence[str], groups: Sequence[str]) -> bool:
    """Whether storing ``content`` with this ACL under ``doc``'s source would change nothing."""
    return (
        doc.content_hash == hashlib.sha256(content).hexdigest()
        and sorted(doc.acl_users or ()) == sorted(users)
        and sorted(doc.acl_groups or ()) == sorted(groups)
    )


def _with_transform(answer: Answer, transform: QueryTransformTrace | None) -> Answer:
    """The answer with the query transform's trace, its tokens in the usage, and a note if it fell back."""
    if transform is None:
        return answer
    note = transform_note(transform)
    return replace(
        answer,
        query_transform=transform,
        usage=answer.usage.plus(transform.usage),
        notes=(*answer.notes, note) if note else answer.notes,
    )


def _page(pages: Mapping[str, list[int]], doc_id: str, offset: int) -> int:
    """The 1-based page holding ``offset``, from a document's page start offsets."""
    return page_at(pages[doc_id], offset)
