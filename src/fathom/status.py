"""What ``fathom status`` reports, from the store of record and the index alone.

:func:`home_status` opens only the settings, the store and the search backend: no answer
pipeline, no catch-up, no model. It reports the indexes as they stand (a lagging index shows
a position behind the change log; the next ingest or search catches it up).
"""

from __future__ import annotations

from pathlib import Path

from fathom.config import Settings, load_settings
from fathom.domain import StoreStatus
from fathom.index.backend import SearchBackend
from fathom.index.registry import create_backend
from fathom.logs import configure_logging
from fathom.store.database import Store

__all__ = ["home_documents", "home_status", "store_status"]


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
    """The status of a home (``$FATHOM_HOME`` by default), opened just for this."""
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
    """How many documents the home holds for its tenant (opens the store only)."""
    settings = _settings(home)
    store = Store(settings.resolved_database_url, lock_dir=settings.home)
    try:
        return store.counts(settings.tenant)[0]
    finally:
        store.close()


def _settings(home: str | Path | None) -> Settings:
    """The home's settings, with logging set up as :class:`fathom.Fathom` sets it (stderr)."""
    settings = load_settings(home)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings
