"""What ``fathom status`` reports, from the store of record and the index alone.

:func:`home_status` opens only the settings, the store and the search backend: no answer
pipeline, no catch-up, no model. It reports the indexes as they stand (a lagging index shows
a position behind the change log; the next ingest or search catches it up).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fathom.config import Settings, load_settings
from fathom.domain import StoreStatus
from fathom.errors import ConfigError, NotFound
from fathom.index.backend import SearchBackend
from fathom.index.registry import create_backend
from fathom.logs import configure_logging
from fathom.store.database import Store

__all__ = ["check_home", "home_documents", "home_status", "home_store", "store_status"]


def store_status(settings: Settings, store: Store, backend: SearchBackend) -> StoreStatus:
    """Counts, index positions and disk use of an open home."""
    documents, chunks = store.counts()
    home = settings.home
    disk = sum(p.stat().st_size for p in home.rglob("*") if p.is_file()) if home.exists() else 0
    return StoreStatus(
        home=str(home),
        database=store.engine.url.render_as_string(hide_password=True),
        documents=documents,
        chunks=chunks,
        last_sequence=store.last_sequence(),
        index_positions={backend.name: backend.applied_sequence()},
        index_chunks=backend.sizes(),
        disk_bytes=disk,
        embedder=settings.embedder,
    )


def home_status(home: str | Path | None = None) -> StoreStatus:
    """The status of a home (``$FATHOM_HOME`` by default), opened just for this.

    Raises:
        NotFound: the home does not exist (``home.not_found``); it is not created.
        ConfigError: the home is a file (``home.not_a_folder``).
    """
    settings = _settings(home)
    backend = create_backend(settings)
    try:
        store = Store(settings.resolved_database_url, lock_dir=settings.home)
        try:
            return store_status(settings, store, backend)
        finally:
            store.close()
    finally:
        backend.close()


def home_documents(home: str | Path | None = None) -> int:
    """How many documents the home holds for its tenant (opens the store only; a home that does
    not exist holds none and is not created)."""
    settings = load_settings(home)
    try:
        check_home(settings)
    except NotFound:
        return 0
    with home_store(settings) as store:
        return store.counts(settings.tenant)[0]


@contextmanager
def home_store(settings: Settings) -> Iterator[Store]:
    """The store of record of an existing home, opened just for a read (no index, no model).

    Raises:
        NotFound: the home does not exist (``home.not_found``); it is not created.
        ConfigError: the home is a file (``home.not_a_folder``).
    """
    configure_logging(settings.log_level, json_lines=settings.log_json)
    check_home(settings)
    store = Store(settings.resolved_database_url, lock_dir=settings.home)
    try:
        yield store
    finally:
        store.close()


def check_home(settings: Settings, *, create: bool = False) -> None:
    """Check that the home is a folder; ``create`` makes a missing one, otherwise it is an error.

    Commands that only read never create a home: a mistyped ``--home`` is reported, not
    replaced by an empty folder. (With a ``database_url`` the store lives elsewhere, and a
    missing home is made as before.)

    Raises:
        ConfigError: the home is a file, not a folder (``home.not_a_folder``).
        NotFound: the home does not exist and ``create`` is false (``home.not_found``).
    """
    home = settings.home
    if home.exists() and not home.is_dir():
        raise ConfigError(
            f"the home {home} is a file, not a folder: give --home (or FATHOM_HOME) a folder",
            code="home.not_a_folder",
        )
    if home.is_dir():
        return
    if not create and settings.database_url is None:
        raise NotFound(
            f"no fathom home at {home}: check --home (or FATHOM_HOME), or run `fathom ingest` to create it",
            code="home.not_found",
        )
    home.mkdir(parents=True, exist_ok=True)


def _settings(home: str | Path | None) -> Settings:
    """The settings of an existing home, with logging set up as :class:`fathom.Fathom` sets it."""
    settings = load_settings(home)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    check_home(settings)
    return settings
