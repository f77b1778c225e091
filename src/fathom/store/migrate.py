"""Schema migrations: alembic, run only when the store is not already at the newest revision."""

from __future__ import annotations

import fcntl
import re
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from fathom.errors import BackendUnavailable

__all__ = ["migrate_schema"]

_MIGRATE_LOCK = 0x66617469


_REVISION = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*["']([^"']+)["']""", re.MULTILINE)


def _migration_head() -> str | None:
    """The newest migration's revision, read from the scripts' text (no alembic import).

    None when it cannot be told for sure (not exactly one head, a script it cannot read):
    then :meth:`Store.migrate` runs alembic as always.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        for script in (Path(__file__).parent / "migrations" / "versions").glob("*.py"):
            script_text = script.read_text(encoding="utf-8")
            found: dict[str, str] = {m.group(1): m.group(2) for m in _REVISION.finditer(script_text)}
            if "revision" not in found:
                return None
            revisions.add(found["revision"])
            if "down_revision" in found:
                parents.add(found["down_revision"])
    except OSError:
        return None
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def migrate_schema(engine: Engine, lock_dir: Path | None, safe_url: str) -> None:
    """Bring the schema to the newest migration (safe to call on every open).

    A store already at the newest migration is left alone without loading alembic and the
    migration scripts (most of the cost of opening a store for ``fathom status``). Processes
    sharing a SQLite home migrate one at a time (a lock file in ``lock_dir``), servers sharing
    a PostgreSQL database too (an advisory lock).
    """
    head = _migration_head()
    if head is not None and _schema_version(engine) == head:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "fathom.store:migrations")
    lock = None
    try:
        if lock_dir is not None:
            lock_dir.mkdir(parents=True, exist_ok=True)
            lock = (lock_dir / "migrate.lock").open("w")
            fcntl.flock(lock, fcntl.LOCK_EX)
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise BackendUnavailable(f"cannot open the store at {safe_url}") from exc
    finally:
        if lock is not None:
            lock.close()


def _schema_version(engine: Engine) -> str | None:
    """The store's alembic revision, or None when unknown (new store, unreachable, several)."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except Exception:  # no table yet, or the database is not reachable: migrate_schema() decides
        return None
    return str(rows[0][0]) if len(rows) == 1 else None
