"""Tables of the store of record (SQLAlchemy 2). Alembic migrations create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AnswerRow",
    "ApiKeyRow",
    "AuditEventRow",
    "Base",
    "ChangeRow",
    "ChunkRow",
    "ConversationRow",
    "DocumentAclRow",
    "DocumentRow",
    "FeedbackRow",
    "IdempotencyRow",
    "JobRow",
    "TurnDocumentRow",
    "TurnRow",
    "WebhookDeliveryRow",
    "WebhookRow",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class DocumentRow(Base):
    """A document: its extracted text is the reference every chunk offset points into."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("tenant_id", "source", name="uq_documents_tenant_source"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128), index=True)
    source: Mapped[str] = mapped_column(String(4096))
    title: Mapped[str] = mapped_column(String(1024))
    mime_type: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    acl_users: Mapped[list[str]] = mapped_column(JSON, default=list)
    acl_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The user of the key that created the document: with admins, the only one who may replace
    # it or change its ACL. NULL (created by the CLI, by a key without a user, or before owners
    # were recorded): admins only.
    owner_user: Mapped[str | None] = mapped_column(String(256), nullable=True)
    # For a document created by a key without a user: that key's id (its owner). NULL otherwise.
    owner_key: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The write ACL (:mod:`fathom.permissions`): editors among these users and groups may replace
    # the document, change its ACLs or delete it, as its owner may. Empty: owner and admins only.
    write_users: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    write_groups: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DocumentAclRow(Base):
    """One ACL token of a document (:mod:`fathom.index.vocabulary`): ``*`` for the whole tenant,
    ``u:<user>`` or ``g:<group>``. Chunk reads for a principal join on it."""

    __tablename__ = "document_acl"

    doc_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    token: Mapped[str] = mapped_column(String(512), primary_key=True)


class ChunkRow(Base):
    """A passage of a document. ``id`` is never reused, so indexes can key on it."""

    __tablename__ = "chunks"
    __table_args__ = (
        Index("ix_chunks_doc_ordinal", "doc_id", "ordinal"),
        Index("ix_chunks_embed_key", "embedding_model", "content_hash"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    doc_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(128))
    ordinal: Mapped[int] = mapped_column(Integer)
    start_offset: Mapped[int] = mapped_column(Integer)
    end_offset: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    heading_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_count: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    embedding_model: Mapped[str] = mapped_column(String(256))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    # MinHash of the chunk's text (uint64[64]), so search collapses near-duplicates without
    # hashing every hit; NULL only for a row written by an older version before migration.
    minhash: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # 1-based page (or slide) of a paged document; chunks never cross a page break.
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ChangeRow(Base):
    """The change log: every chunk added or removed, in commit order.

    Indexes are derived from this log; each remembers the last ``seq`` it applied.
    """

    __tablename__ = "changes"
    __table_args__ = ({"sqlite_autoincrement": True},)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chunk_id: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(8))
    tenant_id: Mapped[str] = mapped_column(String(128))


class ApiKeyRow(Base):
    """An API key: only a SHA-256 of the key is kept; ``prefix`` finds the row to compare."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("uq_api_keys_previous_prefix", "previous_prefix", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Kept equal to ``role == "admin"`` (the column before roles; older versions read it).
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # reader, editor or admin (migration 0008: admin keys became admin, the others editor).
    role: Mapped[str] = mapped_column(String(16), default="editor", server_default="editor")
    # What the key may be used for (fathom.domain.SCOPES); NULL: everything.
    scopes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # After ``fathom keys rotate``: the previous secret's prefix and hash, valid until
    # ``previous_valid_until`` (the grace period), so clients can switch without an outage.
    previous_prefix: Mapped[str | None] = mapped_column(String(32), nullable=True)
    previous_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobRow(Base):
    """A durable ingestion job. The upload waits here until a worker commits the document.

    A worker holds a lease (``lease_until``, seconds since the epoch) and renews it while it
    works; a job whose lease ran out was abandoned by a dead worker and is retried, or
    failed once it has used ``max_attempts``. ``updated_at`` is the time of the last claim
    (finishing keeps it, so ``finished_at - updated_at`` is the run time), and on a queued job
    it may mark when its tenant was last served (see ``fathom.store.job_schedule``).
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    owner_user: Mapped[str | None] = mapped_column(String(256), nullable=True)
    # The rest of the submitting principal, so the worker can check its permission again when
    # it commits (the document may have changed owner or ACL since the upload was accepted).
    owner_groups: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    owner_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The submitter's role and key (NULL for jobs queued before 0008: editor, or admin by
    # ``owner_admin``), and the write ACL the upload asks for (NULL: keep the document's).
    owner_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    owner_key: Mapped[str | None] = mapped_column(String(32), nullable=True)
    write_users: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    write_groups: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    document_id: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(4096))
    title: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    acl_users: Mapped[list[str]] = mapped_column(JSON, default=list)
    acl_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # W3C traceparent of the upload request (tracing on), so the ingest spans join its trace.
    trace_parent: Mapped[str | None] = mapped_column(String(64), nullable=True)


class IdempotencyRow(Base):
    """The first response to a request sent with an ``Idempotency-Key``, per API key."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(String(32))
    document_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnswerRow(Base):
    """An answer given over the service, so feedback can refer to it (no question text kept)."""

    __tablename__ = "answers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    # The API key that received the answer: a key without a user may rate only its own answers.
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    abstained: Mapped[bool] = mapped_column(Boolean, default=False)
    cited_doc_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # What the answer used, for the usage rollup (GET /v1/usage); zero for extractive answers.
    model: Mapped[str | None] = mapped_column(String(256), nullable=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    cached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class FeedbackRow(Base):
    """A rating of an answer by the principal who received it."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("uq_feedback_public_id", "public_id", unique=True),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The id callers see (random hex): ``id`` counts across tenants and stays internal.
    public_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    answer_id: Mapped[str] = mapped_column(ForeignKey("answers.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    rating: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConversationRow(Base):
    """A conversation, owned by the principal that created it: its tenant and user, or, for a
    key without a user, that very key (``owner_key``; NULL for the embedded CLI and API).

    ``updated_at`` is the last activity; retention deletes conversations idle for longer than
    ``conversation_retention_days``.
    """

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_tenant_updated", "tenant_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    owner_user: Mapped[str | None] = mapped_column(String(256), nullable=True)
    owner_key: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TurnRow(Base):
    """One question and answer of a conversation: only what showing it and rewriting the next
    follow-up need (the question, its standalone form, the answer text and its citations)."""

    __tablename__ = "conversation_turns"
    __table_args__ = (
        UniqueConstraint("conversation_id", "ordinal", name="uq_conversation_turns_ordinal"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(Text)
    standalone_question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    abstained: Mapped[bool] = mapped_column(Boolean, default=False)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model: Mapped[str] = mapped_column(String(256))
    mode: Mapped[str] = mapped_column(String(16))
    # True once a document the answer cited was deleted: answer and citations were erased.
    redacted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TurnDocumentRow(Base):
    """A document a turn's answer cites, so deleting the document erases the quotes of it."""

    __tablename__ = "conversation_turn_documents"
    __table_args__ = (Index("ix_conversation_turn_documents_doc", "doc_id"),)

    turn_id: Mapped[int] = mapped_column(
        ForeignKey("conversation_turns.id", ondelete="CASCADE"), primary_key=True
    )
    doc_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class WebhookRow(Base):
    """An endpoint a tenant's admin registered for events (see :mod:`fathom.webhooks`).

    ``secret`` is kept as given, since every delivery is signed with it; it is never returned
    or logged. ``failures``/``retry_at`` are the endpoint's backoff (consecutive failed
    attempts, and when to try again, seconds since the epoch); ``lease_owner``/``lease_until``
    say which delivery worker holds the endpoint now (one at a time, so deliveries to one
    endpoint go in order and a hanging receiver holds one worker at most).
    """

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_tenant", "tenant_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(String(256))
    created_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class WebhookDeliveryRow(Base):
    """One event for one endpoint: the outbox row, written in the transaction of the event.

    ``body`` is the exact JSON sent (signed at each attempt); ``status`` is ``pending``,
    ``delivered`` or ``dead`` (retried past the horizon; kept for inspection).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint", "webhook_id", "status", "created_at"),
        Index("ix_webhook_deliveries_status", "status", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEventRow(Base):
    """One audit event: who did what to which target, through which request, and how it ended.

    Append-only and hash-chained per tenant (:mod:`fathom.store.audit`): ``seq`` counts the
    tenant's events from 1, ``prev_hash`` is the hash of the tenant's previous event and ``hash``
    the SHA-256 of ``prev_hash`` and the event's canonical JSON. ``tenant_id`` is ``""`` for
    events no tenant can be told for (a refused credential of unknown origin). Never holds
    document text, keys or tokens.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq", name="uq_audit_events_tenant_seq"),
        Index("ix_audit_events_tenant_created", "tenant_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    actor_user: Mapped[str | None] = mapped_column(String(256), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(256), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
