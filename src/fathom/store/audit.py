"""The audit trail: an append-only log of who did what, hash-chained per tenant.

Every event (:class:`AuditEvent`) names its tenant, its actor (:class:`Actor`: an API key, a
token's subject, a CLI user or a job), an action (:data:`ACTIONS`), a target, the request it came
through and its outcome. :func:`append` writes it in the caller's transaction, so an event of a
change commits exactly when the change does; :meth:`AuditLog.record` writes one on its own.

Chain: the events of one tenant are numbered ``seq`` = 1, 2, ... and each stores
``hash = sha256(prev_hash + canonical JSON of the event)`` with the previous event's hash as
``prev_hash`` (:data:`GENESIS` for the first). Changing an event breaks its hash; deleting one
breaks the next event's ``prev_hash`` and leaves a gap in ``seq``; :meth:`AuditLog.verify` finds
the first such break. Appends of one tenant are serialized so the chain never forks: on
PostgreSQL by a transaction-scoped advisory lock keyed by the tenant, on SQLite by taking the
database's write lock before the chain's head is read. A unique ``(tenant_id, seq)`` refuses a
fork that would get past the lock anyway.

What a plain hash chain cannot show: someone able to write the table who rewrites every hash
from the change onwards, or removes the newest events. Keep the heads :meth:`AuditLog.verify`
reports (``fathom audit verify``) somewhere else to detect those.

Never document text, keys or tokens: query text only with ``audit_queries = true``, otherwise an
HMAC-SHA256 of it (:meth:`AuditLog.query_details`).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, Row, bindparam, insert, or_, select, text
from sqlalchemy.orm import Session

from fathom.diskspace import STORE_MESSAGE, storage_errors
from fathom.store.schema import AuditEventRow, DocumentRow, utcnow

if TYPE_CHECKING:  # the store writes events through append(): no import cycle at run time
    from fathom.config import Settings
    from fathom.store.database import Store

__all__ = [
    "ACTIONS",
    "GENESIS",
    "NO_TENANT",
    "Actor",
    "AuditBreak",
    "AuditEvent",
    "AuditLog",
    "AuditRecord",
    "ChainReport",
    "DocumentState",
    "acting",
    "append",
    "current_actor",
    "doc_ids",
    "document_written",
]

# The hash a tenant's first event chains to.
GENESIS = "0" * 64
# The tenant of events no tenant can be told for (a refused credential of unknown origin).
NO_TENANT = ""
# Every action recorded (docs/audit.md explains each).
ACTIONS = (
    "auth.failed",
    "search",
    "ask",
    "document.upload",
    "document.create",
    "document.replace",
    "document.acl_change",
    "document.delete",
    "key.create",
    "key.rotate",
    "key.revoke",
    "webhook.create",
    "webhook.delete",
)
# Names the PostgreSQL advisory lock (with the tenant's hashtext) that serializes a chain's appends.
_CHAIN_LOCK = 0x61756474
_PG_LOCK = text("SELECT pg_advisory_xact_lock(:key, hashtext(:tenant))")
# A write that changes nothing: on SQLite it takes the database's write lock (held to commit),
# so the head read next is the newest one and no other appender can pass it.
_SQLITE_LOCK = text("UPDATE audit_events SET seq = seq WHERE 0")
# The same lock, and no wait for the WAL flush at commit (one round trip for both).
_PG_LOCK_NO_FLUSH = text(
    "SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(:key, hashtext(:tenant))"
)
_HEAD = (
    select(AuditEventRow.seq, AuditEventRow.hash)
    .where(AuditEventRow.tenant_id == bindparam("tenant"))
    .order_by(AuditEventRow.seq.desc())
    .limit(1)
)
_INSERT = insert(AuditEventRow).returning(AuditEventRow.id)
_COLUMNS = (
    AuditEventRow.id,
    AuditEventRow.tenant_id,
    AuditEventRow.seq,
    AuditEventRow.created_at,
    AuditEventRow.actor_kind,
    AuditEventRow.actor_id,
    AuditEventRow.actor_user,
    AuditEventRow.action,
    AuditEventRow.target,
    AuditEventRow.request_id,
    AuditEventRow.outcome,
    AuditEventRow.details,
    AuditEventRow.prev_hash,
    AuditEventRow.hash,
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, and through which request.

    Attributes:
        kind: ``key`` (an API key), ``token`` (an OIDC token), ``cli`` (a local command or the
            Python API), ``job`` (an ingestion worker committing an upload) or ``unknown`` (a
            refused credential).
        id: the key's id, the token's ``sub``, the local OS user, or the job's id.
        user: the principal's user, when it has one.
        request_id: the HTTP request (default: the one being served, from the log context).
    """

    kind: str
    id: str | None = None
    user: str | None = None
    request_id: str | None = None

    @classmethod
    def local(cls) -> Actor:
        """The person running a command on this machine (their OS user name)."""
        try:
            name: str | None = getpass.getuser()
        except (OSError, KeyError):  # no user name in a bare container
            name = None
        return cls(kind="cli", id=name)


_acting: ContextVar[Actor | None] = ContextVar("fathom_audit_actor", default=None)


@contextmanager
def acting(actor: Actor) -> Iterator[Actor]:
    """Record the events of the calls inside as done by ``actor`` (in this thread or task)."""
    token = _acting.set(actor)
    try:
        yield actor
    finally:
        _acting.reset(token)


def current_actor() -> Actor:
    """The actor set by :func:`acting`, else the local user; with the request id being served."""
    return _in_request(_acting.get() or Actor.local())


def _in_request(actor: Actor) -> Actor:
    """``actor`` with the id of the request being served (bound to the log context) unless it has one."""
    if actor.request_id is None:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if isinstance(request_id, str):
            return Actor(actor.kind, actor.id, actor.user, request_id)
    return actor


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened; :func:`append` adds the time, the sequence and the hashes.

    ``details`` are small JSON values (strings, integers, booleans, lists of them): ids and
    hashes, never document text, keys or tokens. ``actor`` defaults to :func:`current_actor`.
    """

    tenant: str
    action: str
    target: str | None = None
    outcome: str = "ok"
    details: Mapping[str, Any] = field(default_factory=dict)
    actor: Actor | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored event."""

    id: int
    tenant: str
    seq: int
    time: str
    actor_kind: str
    actor_id: str | None
    actor_user: str | None
    action: str
    target: str | None
    request_id: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def canonical(self) -> str:
        """The JSON the hash covers: every field but the row id and the hashes, keys sorted."""
        return json.dumps(
            {
                "tenant": self.tenant,
                "seq": self.seq,
                "time": self.time,
                "actor_kind": self.actor_kind,
                "actor_id": self.actor_id,
                "actor_user": self.actor_user,
                "action": self.action,
                "target": self.target,
                "request_id": self.request_id,
                "outcome": self.outcome,
                "details": self.details,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant or None,
            "seq": self.seq,
            "time": self.time,
            "actor": {"kind": self.actor_kind, "id": self.actor_id, "user": self.actor_user},
            "action": self.action,
            "target": self.target,
            "request_id": self.request_id,
            "outcome": self.outcome,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def chain_hash(prev_hash: str, canonical: str) -> str:
    """The hash of an event: SHA-256 of the previous event's hash and its canonical JSON."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _timestamp(moment: datetime) -> str:
    """UTC, microseconds, ``Z``: the same text however the database hands the time back."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(row: Row[Any]) -> AuditRecord:
    details = row.details
    if isinstance(details, str):
        details = json.loads(details)
    return AuditRecord(
        id=int(row.id),
        tenant=row.tenant_id,
        seq=int(row.seq),
        time=_timestamp(row.created_at),
        actor_kind=row.actor_kind,
        actor_id=row.actor_id,
        actor_user=row.actor_user,
        action=row.action,
        target=row.target,
        request_id=row.request_id,
        outcome=row.outcome,
        details=dict(details or {}),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _lock_chain(conn: Connection, tenant: str, flush: bool) -> None:
    """Hold the tenant's chain until this transaction ends (see the module docstring)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_LOCK if flush else _PG_LOCK_NO_FLUSH, {"key": _CHAIN_LOCK, "tenant": tenant})
    else:
        conn.execute(_SQLITE_LOCK)


def append(session: Session, event: AuditEvent, *, flush: bool = True) -> AuditRecord:
    """Append ``event`` to its tenant's chain in ``session``'s transaction (one lock, one read of
    the chain's head, one INSERT); it commits or rolls back with the rest of the transaction.
    ``flush=False``: see :meth:`AuditLog.record` (for a transaction of its own)."""
    actor = _in_request(event.actor) if event.actor is not None else current_actor()
    # Core statements on the session's connection: the ORM's insert path costs more than the rest.
    conn = session.connection()
    _lock_chain(conn, event.tenant, flush)
    head = conn.execute(_HEAD, {"tenant": event.tenant}).first()
    seq, prev_hash = (int(head[0]) + 1, str(head[1])) if head is not None else (1, GENESIS)
    now = utcnow()
    record = AuditRecord(
        id=0,
        tenant=event.tenant,
        seq=seq,
        time=_timestamp(now),
        actor_kind=actor.kind,
        actor_id=_clip(actor.id, 256),
        actor_user=_clip(actor.user, 256),
        action=event.action,
        target=_clip(event.target, 256),
        request_id=_clip(actor.request_id, 64),
        outcome=event.outcome[:128],
        # Through JSON once, so what is hashed is exactly what the database hands back.
        details=json.loads(json.dumps(dict(event.details))),
        prev_hash=prev_hash,
        hash="",
    )
    digest = chain_hash(prev_hash, record.canonical())
    row_id = conn.execute(
        _INSERT,
        {
            "tenant_id": record.tenant,
            "seq": seq,
            "created_at": now,
            "actor_kind": record.actor_kind,
            "actor_id": record.actor_id,
            "actor_user": record.actor_user,
            "action": record.action,
            "target": record.target,
            "request_id": record.request_id,
            "outcome": record.outcome,
            "details": record.details,
            "prev_hash": prev_hash,
            "hash": digest,
        },
    ).scalar_one()
    return AuditRecord(**{**_fields(record), "id": int(row_id), "hash": digest})


@dataclass(frozen=True, slots=True)
class DocumentState:
    """What a write's audit events compare: a document's text hash and ACL before the write."""

    content_hash: str
    acl_users: tuple[str, ...]
    acl_groups: tuple[str, ...]

    @classmethod
    def of(cls, doc: DocumentRow | None) -> DocumentState | None:
        if doc is None:
            return None
        return cls(doc.content_hash, tuple(sorted(doc.acl_users or ())), tuple(sorted(doc.acl_groups or ())))


def document_written(
    session: Session, doc_id: str, source: str, chunks: int, before: DocumentState | None, doc: DocumentRow
) -> None:
    """Audit a document written in ``session``: ``document.create``, or ``document.replace``
    (text, title or metadata) and/or ``document.acl_change``, from its state ``before``."""
    tenant, details = doc.tenant_id, {"source": source, "chunks": chunks}
    after = DocumentState.of(doc)
    assert after is not None
    if before is None:
        append(session, AuditEvent(tenant, "document.create", doc_id, details=details))
        return
    acl_changed = (before.acl_users, before.acl_groups) != (after.acl_users, after.acl_groups)
    if before.content_hash != after.content_hash or not acl_changed:
        append(session, AuditEvent(tenant, "document.replace", doc_id, details=details))
    if acl_changed:
        acl = {
            "source": source,
            "acl": {"users": list(after.acl_users), "groups": list(after.acl_groups)},
            "previous_acl": {"users": list(before.acl_users), "groups": list(before.acl_groups)},
        }
        append(session, AuditEvent(tenant, "document.acl_change", doc_id, details=acl))


def _fields(record: AuditRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in AuditRecord.__slots__}


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


@dataclass(frozen=True, slots=True)
class AuditBreak:
    """The first event where a tenant's chain does not hold.

    Attributes:
        tenant: the chain's tenant (``""``: events of no tenant).
        seq: the sequence number found (or expected, for a missing event) there.
        event_id: the row id of the event found there.
        reason: ``modified`` (the event's hash does not match its content), ``missing`` (events
            before it were removed: its ``seq`` or ``prev_hash`` does not follow on) or
            ``relinked`` (its ``prev_hash`` was changed).
    """

    tenant: str
    seq: int
    event_id: int
    reason: str

    def message(self) -> str:
        tenant = self.tenant or "(no tenant)"
        what = {
            "modified": "was modified (its hash does not match its content)",
            "missing": "does not follow the event before it: events were removed",
            "relinked": "points to another previous event than the one stored before it",
        }[self.reason]
        return f"tenant {tenant}: event {self.seq} (id {self.event_id}) {what}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :meth:`AuditLog.verify` found: events checked, each tenant's head, the first break."""

    events: int
    heads: dict[str, tuple[int, str]]
    broken: AuditBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


class AuditLog:
    """Records, lists and verifies the audit trail of one store.

    Args:
        store: the store of record holding the log.
        settings: ``audit_queries`` and the key of query hashes (``audit_hash_key``, else a random
            key kept in ``<home>/audit.key``).
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._hash_key: bytes | None = None

    def record(self, event: AuditEvent, *, flush: bool = True) -> AuditRecord:
        """Append one event in its own transaction.

        ``flush=False`` (searches and asks, one per request) lets PostgreSQL acknowledge the
        commit before its WAL reaches the disk (``synchronous_commit = off`` for this transaction
        only): a crash of the database server may lose the last fraction of a second of such
        events, never break the chain, and the request does not wait for a disk flush. SQLite
        (WAL, ``synchronous=NORMAL``) never waits for one.
        """
        with self._store.session() as session:
            return append(session, event, flush=flush)

    def query_details(self, query: str) -> dict[str, str]:
        """How a query is kept: its text with ``audit_queries``, otherwise an HMAC-SHA256 of it."""
        if self._settings.audit_queries:
            return {"query": query}
        digest = hmac.new(self._key(), query.encode("utf-8"), hashlib.sha256).hexdigest()
        return {"query_hmac": digest}

    def _key(self) -> bytes:
        if self._hash_key is None:
            configured = self._settings.audit_hash_key
            if configured is not None:
                self._hash_key = configured.get_secret_value().encode("utf-8")
            else:
                path = self._settings.home / "audit.key"
                with storage_errors(path, where="store", message=STORE_MESSAGE):
                    self._hash_key = _home_key(path)
        return self._hash_key

    def events(
        self,
        *,
        tenant: str | None,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        after: int = 0,
        limit: int | None = 100,
    ) -> list[AuditRecord]:
        """Events oldest first, filtered; ``after`` is the row id to continue from (a page's last).

        ``tenant=None`` lists every tenant's events (the operator's export); ``actor`` matches
        the actor's id or user; ``since`` is inclusive, ``until`` exclusive.
        """
        query = select(*_COLUMNS).where(AuditEventRow.id > after)
        if tenant is not None:
            query = query.where(AuditEventRow.tenant_id == tenant)
        if since is not None:
            query = query.where(AuditEventRow.created_at >= _utc(since))
        if until is not None:
            query = query.where(AuditEventRow.created_at < _utc(until))
        if actor is not None:
            query = query.where(or_(AuditEventRow.actor_id == actor, AuditEventRow.actor_user == actor))
        if action is not None:
            query = query.where(AuditEventRow.action == action)
        query = query.order_by(AuditEventRow.id)
        if limit is not None:
            query = query.limit(limit)
        with self._store.connection() as conn:
            return [_record(row) for row in conn.execute(query)]

    def stream(self, **filters: Any) -> Iterator[AuditRecord]:
        """Every event matching :meth:`events`' filters, oldest first, read in pages."""
        after = 0
        while True:
            page = self.events(**filters, after=after, limit=1000)
            yield from page
            if len(page) < 1000:
                return
            after = page[-1].id

    def verify(self, tenant: str | None = None) -> ChainReport:
        """Walk every chain (or one tenant's) and report the first event where it breaks."""
        query = select(*_COLUMNS).order_by(AuditEventRow.tenant_id, AuditEventRow.seq)
        if tenant is not None:
            query = query.where(AuditEventRow.tenant_id == tenant)
        heads: dict[str, tuple[int, str]] = {}
        checked = 0
        with self._store.connection() as conn:
            starts = _pruned_starts(conn, tenant)
            rows = conn.execution_options(stream_results=True, yield_per=1000).execute(query)
            for row in rows:
                record = _record(row)
                checked += 1
                start = starts.get((record.tenant, record.seq - 1), (0, GENESIS))
                broken = _check(record, heads.get(record.tenant, start))
                if broken is not None:
                    rows.close()
                    return ChainReport(events=checked, heads=heads, broken=broken)
                heads[record.tenant] = (record.seq, record.hash)
        return ChainReport(events=checked, heads=heads, broken=None)


PRUNED = "audit.pruned"


def _pruned_starts(conn: Connection, tenant: str | None) -> dict[tuple[str, int], tuple[int, str]]:
    """Where chains whose oldest events retention removed start: ``(tenant, through_seq)`` ->
    ``(through_seq, hash of the last removed event)``, from the ``audit.pruned`` events.

    Those events are in the chain themselves (changing one breaks its hash), so a chain may start
    past ``seq`` 1 only where one of them says the events before were removed by retention.
    """
    query = select(AuditEventRow.tenant_id, AuditEventRow.details).where(AuditEventRow.action == PRUNED)
    if tenant is not None:
        query = query.where(AuditEventRow.tenant_id == tenant)
    starts: dict[tuple[str, int], tuple[int, str]] = {}
    for owner, details in conn.execute(query):
        through, last = (details or {}).get("through_seq"), (details or {}).get("last_hash")
        if isinstance(through, int) and isinstance(last, str):
            starts[(owner, through)] = (through, last)
    return starts


def _check(record: AuditRecord, previous: tuple[int, str]) -> AuditBreak | None:
    """Whether ``record`` follows ``(seq, hash)`` of the event before it and matches its hash."""
    seq, prev_hash = previous

    def broken(reason: str) -> AuditBreak:
        return AuditBreak(record.tenant, record.seq, record.id, reason)

    if chain_hash(record.prev_hash, record.canonical()) != record.hash:
        return broken("modified")
    if record.seq != seq + 1:
        return broken("missing")
    if record.prev_hash != prev_hash:
        return broken("relinked")
    return None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _home_key(path: Path) -> bytes:
    """The home's query-hash key: read, or created once (owner-only) by the first process."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(draft, path)  # complete or absent, never half-written; the first one wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def doc_ids(ids: Sequence[str]) -> list[str]:
    """Document ids once each, in first-seen order (a search returns several chunks of one)."""
    return list(dict.fromkeys(ids))
