"""The Python API. Every front (CLI, and later HTTP, MCP, web) is a thin layer over it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from fathom import permissions
from fathom.answer.agent import AgentLimits
from fathom.answer.conversation import ConversationService
from fathom.answer.followup import HistoryTurn
from fathom.answer.pipeline import AnswerPipeline, AskMode, final_answer
from fathom.answer.usage import TokenLedger
from fathom.config import Settings, load_settings
from fathom.domain import (
    Answer,
    AnswerDelta,
    Conversation,
    DocumentInfo,
    FileOutcome,
    Hit,
    IngestReport,
    JobInfo,
    Passage,
    Principal,
    SearchResult,
    Section,
    StoreStatus,
    TextDocument,
    contextual_text,
)
from fathom.embed.base import Embedder, create_embedder
from fathom.embed.lazy import LazyEmbedder
from fathom.errors import (
    ConfigError,
    FathomError,
    InvalidQuery,
    NotFound,
    StorageFull,
)
from fathom.index.backend import TransactionalIndex
from fathom.index.catchup import Indexer, Progress
from fathom.index.registry import create_backend
from fathom.ingest.fetch import fetch_url
from fathom.ingest.mirror import FolderMirror
from fathom.ingest.pipeline import IngestPipeline, ProgressCallback, parse_limits, parse_options
from fathom.ingest.sandbox import ParserPool
from fathom.ingest.sources import fetch_limits, split_sources
from fathom.ingest.uploads import Uploads
from fathom.logs import configure_logging
from fathom.maintenance import Compaction, compact
from fathom.retrieve.documents import DocumentReader
from fathom.retrieve.pipeline import SearchPipeline, StageObserver
from fathom.status import store_status
from fathom.store.audit import AuditLog
from fathom.store.conversations import ConversationStore
from fathom.store.database import Store, document_access
from fathom.store.feedback import FeedbackLog
from fathom.store.jobs import ClaimedJob, JobQueue
from fathom.store.keys import KeyRegistry
from fathom.store.replicas import ReadReplicas
from fathom.telemetry import StageCallback, Telemetry
from fathom.webhooks.registry import Webhooks

__all__ = ["Fathom"]

log = structlog.get_logger(__name__)


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
        # Searches go to streaming replicas when database_replica_urls lists some; all else to the primary.
        self.replicas = ReadReplicas.from_settings(self.settings)
        self.backend = create_backend(self.settings, self.replicas)
        # A backend in the store's database is written in the store's own transactions.
        writer = self.backend if isinstance(self.backend, TransactionalIndex) else None
        try:
            url = self.settings.resolved_database_url
            self.store = Store(url, lock_dir=self.home, index_writer=writer, replicas=self.replicas)
        except BaseException:
            self.backend.close()
            raise
        self.indexer = Indexer(self.store, self.backend, lock_path=self.settings.index_dir / "catchup.lock")
        self._embedder = embedder
        self.ledger = TokenLedger(self.settings.tenant_token_budgets)
        self.stage_observer: StageObserver | None = None  # called with each stage's seconds
        self.telemetry = Telemetry.from_settings(self.settings)
        self.telemetry.add_sink(StageCallback(lambda: self.stage_observer))
        self.replicas.count = self.telemetry.count
        self.searching = SearchPipeline(
            self.settings,
            self.store,
            self.indexer,
            lambda: self.embedder,
            lambda: self.answering.llm(),
            self.telemetry,
        )
        self.reader = DocumentReader(self.store)
        self.answering = AnswerPipeline(
            self.settings,
            self.store,
            self.backend,
            self.searching,
            lambda: self.embedder,
            self.ledger,
            self.telemetry,
            self.reader,
        )
        self.conversations = ConversationService(
            self.settings, ConversationStore(self.store), self.searching, self.answering, self.reader
        )
        self.keys = KeyRegistry(self.store)
        self.audit = AuditLog(self.store, self.settings)
        self.jobs = JobQueue(
            self.store,
            lease_seconds=self.settings.job_lease_seconds,
            max_attempts=self.settings.job_max_attempts,
            tenant_max_running=self.settings.job_tenant_max_running,
            tenant_max_queued_bytes=self.settings.job_tenant_max_queued_bytes,
        )
        self.feedback_log = FeedbackLog(self.store)
        self.webhooks = Webhooks(self.settings, self.store)
        self.uploads = Uploads(
            self.settings, self.store, self.jobs, self.indexer, self._pipeline, self.telemetry
        )
        self._parsers: ParserPool | None = None
        try:
            self.indexer.catch_up()
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
    def parsers(self) -> ParserPool:
        """The parser worker pool (started on first use)."""
        if self._parsers is None:
            self._parsers = ParserPool(
                self.settings.parser_workers, parse_limits(self.settings), parse_options(self.settings)
            )
        return self._parsers

    def close(self) -> None:
        self.answering.close()
        self.searching.close()
        if self._parsers is not None:
            self._parsers.close()
        self.backend.close()
        self.store.close()
        self.replicas.close()
        self.telemetry.close()

    def __enter__(self) -> Fathom:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _principal(self, principal: Principal | None, scope: str | None = None) -> Principal:
        """The caller (None: the tenant's admin, for the CLI and embedded use), refused when its
        credential lacks ``scope`` (``auth.scope_missing``)."""
        who = principal or Principal(tenant=self.settings.tenant, admin=True)
        if scope is not None:
            permissions.require_scope(who, scope)
        return who

    # -- writing --------------------------------------------------------------------------

    def ingest(
        self,
        paths: Iterable[str | Path],
        *,
        metadata: Mapping[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        cluster: str | None = None,
    ) -> IngestReport:
        """Ingest files, folders (recursively) and http(s) URLs. Unchanged files are skipped.

        Returns a report with one outcome per file or URL; failures never stop the batch.
        ``cluster="ray"`` parses, chunks and embeds the files on a Ray cluster (``RAY_ADDRESS``,
        or a local runtime) with the same result (:mod:`fathom.ingest.cluster`).

        Raises:
            ConfigError: an unknown ``cluster`` (``cluster.unknown``), Ray is not installed
                (``cluster.ray_missing``), or was imported after the indexes were opened
                (``cluster.import_order``: import ray first).
        """
        files, missing, urls = split_sources(paths)
        report = self._ingest_files(
            files, metadata=metadata, progress=progress, missing=missing, cluster=cluster
        )
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
        try:
            fetched = fetch_url(url, fetch_limits(settings))
        except FathomError as exc:
            return FileOutcome(url, "failed", error_code=exc.code, message=exc.message)
        meta = {**(metadata or {}), "url": fetched.url}
        outcome = self._pipeline().ingest_bytes(
            fetched.data, source=url, tenant=settings.tenant, metadata=meta, name=fetched.name
        )
        self.indexer.catch_up()
        return outcome

    def _ingest_files(
        self,
        files: list[Path],
        *,
        metadata: Mapping[str, Any] | None,
        progress: ProgressCallback | None,
        missing: list[FileOutcome] | None = None,
        cluster: str | None = None,
    ) -> IngestReport:
        missing = missing or []
        if cluster is not None:
            self._check_cluster(cluster)
        if progress is not None:
            progress("files_total", len(files) + len(missing))
            for _ in missing:
                progress("file", 1)
        if cluster is None:
            report = self._pipeline().ingest_files(
                files,
                tenant=self.settings.tenant,
                metadata=dict(metadata or {}),
                progress=progress,
                after_commit=self.indexer.catch_up,
            )
        else:
            report = self._ingest_on_cluster(files, metadata=metadata, progress=progress)
        report.outcomes[:0] = missing
        return report

    @staticmethod
    def _check_cluster(cluster: str) -> None:
        from fathom.ingest.cluster import prepare_cluster

        prepare_cluster(cluster)

    def _ingest_on_cluster(
        self, files: list[Path], *, metadata: Mapping[str, Any] | None, progress: ProgressCallback | None
    ) -> IngestReport:
        from fathom.ingest.cluster import ClusterIngest, ray_runtime

        def pipeline(embedder: Embedder) -> IngestPipeline:
            return IngestPipeline(self.store, embedder, self.settings, self.parsers, self.telemetry)

        with ray_runtime() as ray:
            return ClusterIngest(ray, self.settings, pipeline).ingest_files(
                files,
                tenant=self.settings.tenant,
                metadata=dict(metadata or {}),
                progress=progress,
                after_commit=self.indexer.catch_up,
            )

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
        self.indexer.catch_up()
        return outcome

    def ingest_texts(
        self, documents: Iterable[TextDocument], *, progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Ingest many documents given as text, embedded in batches (unchanged ones are skipped)."""
        return self._pipeline().ingest_texts(
            documents, tenant=self.settings.tenant, progress=progress, after_commit=self.indexer.catch_up
        )

    def delete(self, source_or_id: str, *, principal: Principal | None = None) -> str:
        """Delete a document by its source (a path is resolved) or its id; returns the doc id.

        Admins delete any document of their tenant; editors the ones they own or whose write
        ACL names them (:mod:`fathom.permissions`). A document the principal may not read does
        not exist for it.

        Raises:
            NotFound: no such document, or one the principal may not read.
            PermissionDenied: the principal may read the document but not delete it
                (``document.delete_denied``), or its credential lacks the ``write`` scope.
        """
        who = self._principal(principal)
        tenant = who.tenant
        doc = self.store.get_document(tenant, source_or_id) or self.store.find_document(tenant, source_or_id)
        if doc is None and not source_or_id.startswith(("http://", "https://")):
            doc = self.store.find_document(tenant, str(Path(source_or_id).expanduser().resolve()))
        if doc is None:
            raise NotFound(f"no document {source_or_id!r}", code="document.not_found")
        permissions.check_delete(who, document_access(doc), source_or_id)
        if not self.store.delete_document(tenant, doc.id):
            raise NotFound(f"no document {source_or_id!r}", code="document.not_found")
        self.answering.forget_document(tenant, doc.id)
        self.indexer.catch_up()
        return doc.id

    def compact(self) -> Compaction:
        """Erase what deletes left in files: indexes rewritten, the store vacuumed and its WAL
        checkpointed (see :mod:`fathom.maintenance` and docs/privacy.md)."""
        return compact(self.store, self.indexer, self.settings.retention_days)

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
        write_acl: tuple[Sequence[str], Sequence[str]] | None = None,
    ) -> tuple[JobInfo, bool]:
        """Queue a document for ingestion; a worker (:meth:`run_job`) commits it later.

        An empty ACL makes the document readable by the whole tenant. A new document is owned
        by the principal's user (its key when it has no user) and needs an editor or admin;
        replacing an existing one (or its ACLs) needs its owner, an editor in its write ACL or
        an admin (:mod:`fathom.permissions`), checked here and again when the worker commits.
        ``write_acl`` (users, groups) sets the write ACL (None keeps a replaced document's).
        Returns the job and whether it is new (False when ``idempotency`` matched an earlier
        request).

        Raises:
            LimitExceeded: the content is larger than ``max_upload_bytes``, or the tenant's
                waiting uploads would pass ``job_tenant_max_queued_bytes``.
            Conflict: the source belongs to a document the principal may not read, or the
                idempotency key was used for another request.
            PermissionDenied: the principal is a reader, or may read the document at ``source``
                but may not write it (``document.write_denied``), or its credential lacks the
                ``write`` scope (``auth.scope_missing``).
        """
        return self.uploads.submit(
            self._principal(principal),
            content,
            source=source,
            title=title,
            metadata=metadata,
            acl_users=acl_users,
            acl_groups=acl_groups,
            idempotency=idempotency,
            write_acl=write_acl,
        )

    def run_job(self, job: ClaimedJob) -> FileOutcome:
        """Ingest a claimed job's document (one transaction) and bring the indexes up to date.

        The document is written as the job's submitter: when it may no longer replace the
        document at the job's source, the job fails with the same code as an upload would and
        nothing is written.
        """
        return self.uploads.run(job)

    def job(self, job_id: str, *, principal: Principal | None = None) -> JobInfo:
        """A job's state, for its submitter, an admin, or a reader of its document.

        Raises:
            NotFound: no such job, or one the principal may not see.
        """
        return self.uploads.job(self._principal(principal, "search"), job_id)

    def sync(
        self,
        directory: str | Path,
        *,
        progress: ProgressCallback | None = None,
        cluster: str | None = None,
    ) -> IngestReport:
        """Make the store mirror a folder: add new files, update changed ones, delete removed ones.

        ``cluster="ray"`` ingests the new and changed files on a Ray cluster (see :meth:`ingest`).
        """
        return self._mirror(cluster).sync(directory, progress=progress)

    def watch(
        self,
        directory: str | Path,
        on_report: Callable[[IngestReport], object],
        *,
        stop: threading.Event | None = None,
        cluster: str | None = None,
    ) -> None:
        """Mirror a folder continuously until ``stop`` is set (see :meth:`FolderMirror.watch`)."""
        self._mirror(cluster).watch(directory, on_report, stop=stop)

    def _mirror(self, cluster: str | None = None) -> FolderMirror:
        return FolderMirror(
            self.store,
            self.settings.tenant,
            lambda files, progress: self._ingest_files(
                files, metadata=None, progress=progress, cluster=cluster
            ),
            self.indexer.catch_up,
            debounce_ms=self.settings.sync_debounce_ms,
        )

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
        self.indexer.rebuild(progress)

    def _pipeline(self) -> IngestPipeline:
        # The model loads only when a new or changed document is chunked or embedded: an
        # ingest of unchanged files never imports torch.
        embedder = LazyEmbedder(lambda: self.embedder)
        return IngestPipeline(self.store, embedder, self.settings, self.parsers, self.telemetry)

    # -- reading --------------------------------------------------------------------------

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
        return self.searching.search(
            query, self._principal(principal, "search"), k=k, filters=filters, transform=transform
        )

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Mapping[str, str] | None = None,
        principal: Principal | None = None,
        mode: AskMode = "single",
        agent_limits: AgentLimits | None = None,
    ) -> Answer:
        """Answer from the documents with cited, verified sentences, or abstain.

        With the default ``llm = "extractive"`` every sentence is a verbatim quote; with an
        LLM configured, generated sentences are kept only when their citations support them.
        ``mode="agent"`` lets the LLM search and read in a bounded loop first
        (:mod:`fathom.answer.agent`; ``agent_limits`` lower the ``agent_*`` settings).
        """
        return final_answer(
            self.ask_stream(
                question, k=k, filters=filters, principal=principal, mode=mode, agent_limits=agent_limits
            )
        )

    def ask_stream(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Mapping[str, str] | None = None,
        principal: Principal | None = None,
        mode: AskMode = "single",
        agent_limits: AgentLimits | None = None,
    ) -> Iterator[AnswerDelta | Answer]:
        """Like :meth:`ask`, streamed: answer text pieces as produced, then one final ``Answer``.

        The pieces are the model's raw, unverified text (plain text; escape it when showing
        it as HTML). The final ``Answer`` is verified and is what should be kept: sentences
        that verification removed are absent from it.
        """
        return self.answering.ask_stream(
            question,
            self._principal(principal, "ask"),
            k=k,
            filters=filters,
            mode=mode,
            agent_limits=agent_limits,
        )

    # -- conversations (owned by the principal, through key_id when it has no user) --------

    def start_conversation(
        self, *, principal: Principal | None = None, key_id: str | None = None
    ) -> Conversation:
        """Start a conversation; continue it with :meth:`converse_stream`."""
        return self.conversations.start(self._principal(principal, "ask"), key_id)

    def conversation(
        self, conversation_id: str, *, principal: Principal | None = None, key_id: str | None = None
    ) -> Conversation:
        """A conversation with its turns (raises ``NotFound`` for anyone but its owner)."""
        return self.conversations.get(self._principal(principal, "ask"), conversation_id, key_id)

    def delete_conversation(
        self, conversation_id: str, *, principal: Principal | None = None, key_id: str | None = None
    ) -> None:
        """Delete a conversation and its turns (raises ``NotFound`` for anyone but its owner)."""
        self.conversations.delete(self._principal(principal, "ask"), conversation_id, key_id)

    def converse_stream(
        self,
        conversation_id: str,
        question: str,
        *,
        principal: Principal | None = None,
        key_id: str | None = None,
        **options: Any,
    ) -> Iterator[AnswerDelta | Answer]:
        """Like :meth:`ask_stream` (same options), for the next message of a conversation: a
        follow-up is made standalone from the history first (``Answer.rewrite`` says how)."""
        who = self._principal(principal, "ask")
        return self.conversations.ask_stream(who, conversation_id, question, key_id=key_id, **options)

    def ask_after_stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]],
        *,
        principal: Principal | None = None,
        **options: Any,
    ) -> Iterator[AnswerDelta | Answer]:
        """Like :meth:`converse_stream` with a history the caller keeps (``(question, answer)``
        pairs, oldest first) instead of a stored conversation; nothing is stored."""
        turns = [HistoryTurn(question, answer) for question, answer in history]
        who = self._principal(principal, "ask")
        return self.conversations.answer_followup(who, question, turns, **options)

    def converse(self, conversation_id: str, question: str, **options: Any) -> Answer:
        """:meth:`converse_stream`, returning only the final answer."""
        return final_answer(self.converse_stream(conversation_id, question, **options))

    def purge_conversations(self) -> int:
        """Delete every conversation past ``conversation_retention_days``; returns how many."""
        return self.conversations.purge()

    def section(self, doc_id: str, start: int, end: int | None = None) -> Section:
        """The section around ``[start, end)`` of a document (see :meth:`DocumentReader.section`)."""
        return self.reader.section(Principal(tenant=self.settings.tenant, admin=True), doc_id, start, end)

    def passage(
        self,
        doc_id: str,
        start: int,
        end: int,
        *,
        neighbours: int = 1,
        principal: Principal | None = None,
    ) -> Passage:
        """The quote at ``[start, end)`` of a document in context (see :meth:`DocumentReader.passage`)."""
        return self.reader.passage(
            self._principal(principal, "search"), doc_id, start, end, neighbours=neighbours
        )

    def documents(self, *, principal: Principal | None = None) -> list[DocumentInfo]:
        """Every document of the principal's tenant that it may read, by source."""
        return self.reader.documents(self._principal(principal, "search"))

    def document(self, doc_id: str, *, principal: Principal | None = None) -> DocumentInfo:
        """One document's details, without its text.

        Raises:
            NotFound: no such document, or one the principal may not read.
        """
        return self.reader.document(self._principal(principal, "search"), doc_id)

    def document_text(self, doc_id: str, *, principal: Principal | None = None) -> str:
        """The extracted text of a document: the text every offset and quote refers to."""
        return self.reader.readable(self._principal(principal, "search"), doc_id).text

    # -- feedback -------------------------------------------------------------------------

    def record_answer(
        self, answer: Answer, *, principal: Principal | None = None, key_id: str | None = None
    ) -> str:
        """Remember that the principal received ``answer`` (ids and usage, never text) through the
        API key ``key_id`` (None outside the service); returns its answer id."""
        return self.feedback_log.record(self._principal(principal, "ask"), answer, key_id=key_id)

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
        return self.feedback_log.add(
            self._principal(principal, "ask"), answer_id, rating, comment, key_id=key_id
        )

    def status(self) -> StoreStatus:
        """Counts, index positions and disk use of this home."""
        return store_status(self.settings, self.store, self.backend)
