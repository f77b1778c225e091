"""Read replicas: searches on PostgreSQL streaming replicas, everything else on the primary.

With ``database_replica_urls`` set, :class:`ReadReplicas` routes the reads of a search — the
postgres backend's ranking queries, then the chunk reads that re-check tenant and ACL and the
term statistics an answer uses — to a streaming replica, round robin among the healthy ones.
Every write, job, key lookup and status read stays on the primary (the store's own engine).

A replica is used only when it is current enough, checked on the same connection just before
the read (one small statement, no extra connection):

- **Lag bound.** Its replay lag is at most ``database_replica_max_lag_ms``: 0 when it has replayed
  everything it received, otherwise the age of the last transaction it replayed.
- **This node's writes.** It has replayed this process's last write: when a connection of a
  watched engine that ran a write (any statement other than SELECT/SHOW) goes back to the pool,
  its transaction over, the primary's WAL position is read on it and becomes the fence; a replica
  whose replay position is behind the fence is skipped. A search that follows a completed
  ingest, delete or job on the same node therefore sees it.
- **Same source for a search's follow-up reads.** The chunk reads after a search go to the
  replica (or primary) that ranked it, so a hit is never dropped because another replica lags
  more; when that replica fails, they go to the primary.

A replica whose connection fails (refused, reset, terminated, or shutting down) is left out for
``database_replica_retry_seconds`` and the read is retried on the next replica or the primary: the
caller never sees the failure. Each such event is logged as ``db.replica_unavailable`` with the
replica's host, port and database (never its URL, which may hold a password) and counted
(``replica_fallback``, reason ``down``; a skipped lagging replica counts reason ``behind``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError

from fathom.config import Settings

__all__ = ["ReadReplicas", "parse_lsn"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Connecting to a replica gives up sooner than to the primary: there is somewhere else to go.
_CONNECT_TIMEOUT_SECONDS = 2
_PRIMARY = -1
# (in recovery, replay position, replay lag in ms); a primary (or promoted replica) has no lag.
_REPLICA_STATE = text(
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
    " CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE coalesce(1000 * extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()),"
    " 'Infinity') END::float8"
)
_PRIMARY_POSITION = text("SELECT pg_current_wal_lsn()::text")
_WROTE = "fathom_replicas_wrote"
# Which source the last routed read of this context used (a replica's number or _PRIMARY).
_last_source: ContextVar[int | None] = ContextVar("fathom_replica_source", default=None)


def parse_lsn(lsn: str) -> int:
    """A PostgreSQL WAL position (``16/B374D848``) as an integer."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _connection_lost(exc: DBAPIError) -> bool:
    """Whether the server is unreachable or went away (as opposed to a refused statement)."""
    if exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    # No SQLSTATE: the connection could not be made. 08: connection exception. 57P0x: the server
    # is shutting down, crashed or still starting.
    return isinstance(exc, OperationalError) and (state is None or state[:2] == "08" or state[:4] == "57P0")


def _retryable(exc: DBAPIError) -> bool:
    """A statement a standby cancelled (recovery conflict, 40001) that the next source may answer."""
    return isinstance(exc, OperationalError) and (_sqlstate(exc) or "")[:2] == "40"


@dataclass(slots=True)
class _Replica:
    label: str  # host:port/database, safe to log
    engine: Engine
    down_until: float = 0.0


class ReadReplicas:
    """Routes search reads to streaming replicas (see the module docstring).

    With no replica URLs every read goes to the primary, so callers need no special case.

    Args:
        urls: SQLAlchemy URLs of the replicas.
        max_lag_ms: a replica further behind than this is skipped.
        retry_seconds: how long a replica whose connection failed is left out.
    """

    def __init__(
        self, urls: Sequence[str], *, max_lag_ms: float = 1000.0, retry_seconds: float = 10.0
    ) -> None:
        self._replicas = [_Replica(_label(url), _engine(url)) for url in urls]
        self._max_lag_ms = max_lag_ms
        self._retry_seconds = retry_seconds
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._fence = 0  # the primary's WAL position after this node's last write
        self._fence_unknown = False  # a write whose position could not be read: ask at the next read
        # Telemetry.count (set by Fathom): ("replica_read", target=...) and ("replica_fallback", reason=...).
        self.count: Callable[..., None] = lambda _name, **_labels: None

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadReplicas:
        return cls(
            settings.database_replica_urls,
            max_lag_ms=settings.database_replica_max_lag_ms,
            retry_seconds=settings.database_replica_retry_seconds,
        )

    def close(self) -> None:
        for replica in self._replicas:
            replica.engine.dispose()

    # -- this node's writes -----------------------------------------------------------------

    def watch(self, engine: Engine) -> None:
        """Count writes on ``engine`` (a primary engine): reads after them wait for a replica
        that has replayed them, or go to the primary."""
        if not self._replicas:
            return
        event.listen(engine, "before_cursor_execute", _mark_write)
        event.listen(engine, "checkin", self._checked_in)

    def _checked_in(self, dbapi_connection: Any, record: Any) -> None:
        # The write's transaction has ended (committed or rolled back): a read that starts later
        # must see it, so the fence moves to the primary's position now, read on this connection.
        if record is None or not record.info.pop(_WROTE, False):
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(_PRIMARY_POSITION.text)
                position = parse_lsn(str(cursor.fetchone()[0]))
            finally:
                cursor.close()
                dbapi_connection.rollback()
        except Exception:  # a broken connection: the next read asks the primary instead
            with self._lock:
                self._fence_unknown = True
            return
        self._advance(position)

    def _advance(self, position: int) -> None:
        with self._lock:
            self._fence = max(self._fence, position)

    def _current_fence(self, primary: Engine) -> int:
        with self._lock:
            unknown, self._fence_unknown = self._fence_unknown, False
        if unknown:
            with primary.connect() as conn:
                self._advance(parse_lsn(str(conn.execute(_PRIMARY_POSITION).scalar_one())))
        return self._fence

    # -- reading ----------------------------------------------------------------------------

    def read(
        self,
        primary: Engine,
        read: Callable[[Connection], T],
        *,
        snapshot: bool = False,
        follow: bool = False,
    ) -> T:
        """``read(connection)`` on a current, healthy replica, else on ``primary``.

        ``read`` must only read: it may run more than once (on the next source when a replica
        fails). ``snapshot``: one REPEATABLE READ, read-only transaction for all its statements.
        ``follow``: a read that follows a search in this context (its chunks, its statistics)
        goes where the search went.
        """
        if not self._replicas:
            return _run(primary, read, snapshot)
        fence = self._current_fence(primary)
        for number in self._order(follow):
            replica = self._replicas[number]
            try:
                with replica.engine.connect() as conn:
                    if not self._current(conn, replica, fence):
                        continue
                    result = _run_on(conn, read, snapshot)
            except DBAPIError as exc:
                if _connection_lost(exc):
                    self._lost(replica, exc)
                elif not _retryable(exc):
                    raise
                continue
            if replica.down_until:
                replica.down_until = 0.0
                log.info("db.replica_restored", replica=replica.label)
            _last_source.set(number)
            self.count("replica_read", target="replica")
            return result
        _last_source.set(_PRIMARY)
        self.count("replica_read", target="primary")
        return _run(primary, read, snapshot)

    def _order(self, follow: bool) -> list[int]:
        """The replicas to try, in order (the primary comes after them)."""
        now = time.monotonic()
        if follow:
            source = _last_source.get()
            if source == _PRIMARY:
                return []
            if source is not None and source < len(self._replicas):
                # Another replica may be further behind than the one the search used.
                return [source] if self._replicas[source].down_until <= now else []
        start = next(self._turn)
        count = len(self._replicas)
        order = [(start + i) % count for i in range(count)]
        return [n for n in order if self._replicas[n].down_until <= now]

    def _current(self, conn: Connection, replica: _Replica, fence: int) -> bool:
        standby, replayed, lag_ms = conn.execute(_REPLICA_STATE).one()
        conn.rollback()  # the read starts its own transaction, with a snapshot taken after this
        behind = float(lag_ms) > self._max_lag_ms or (
            bool(standby) and replayed is not None and parse_lsn(str(replayed)) < fence
        )
        if behind:
            log.debug("db.replica_behind", replica=replica.label, lag_ms=float(lag_ms))
            self.count("replica_fallback", reason="behind")
        return not behind

    def _lost(self, replica: _Replica, exc: DBAPIError) -> None:
        replica.down_until = time.monotonic() + self._retry_seconds
        log.warning(
            "db.replica_unavailable",
            replica=replica.label,
            error=type(exc.orig).__name__,
            sqlstate=_sqlstate(exc),
            retry_in_s=self._retry_seconds,
        )
        self.count("replica_fallback", reason="down")


def _mark_write(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if not statement.lstrip()[:6].upper().startswith(("SELECT", "SHOW")):
        conn.info[_WROTE] = True


def _run(engine: Engine, read: Callable[[Connection], T], snapshot: bool) -> T:
    with engine.connect() as conn:
        return _run_on(conn, read, snapshot)


def _run_on(conn: Connection, read: Callable[[Connection], T], snapshot: bool) -> T:
    if snapshot:
        # One BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY, no extra round trip.
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    try:
        return read(conn)
    finally:
        conn.rollback()


def _label(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT_SECONDS
    # Dead pooled connections (a replica that restarted) are found before use, not by the read.
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    # Every transaction read-only: a standby refuses BEGIN READ WRITE, which a pooled connection
    # reset after a read-only snapshot would otherwise send.
    return engine.execution_options(postgresql_readonly=True)
