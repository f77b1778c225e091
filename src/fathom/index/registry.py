"""Build the configured search backend (the ``index_backend`` setting)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fathom.config import Settings
from fathom.errors import ConfigError
from fathom.index.backend import SearchBackend

if TYPE_CHECKING:
    from fathom.store.replicas import ReadReplicas

__all__ = ["create_backend"]


def create_backend(settings: Settings, replicas: ReadReplicas | None = None) -> SearchBackend:
    """The backend ``settings.index_backend`` names, opened over this home or database.

    ``replicas`` (``postgres`` only): streaming replicas that answer its searches.

    Raises:
        ConfigError: an unknown backend name, or ``postgres`` without a PostgreSQL database.
    """
    if settings.index_backend == "embedded":
        from fathom.index.embedded import EmbeddedBackend

        return EmbeddedBackend(
            settings.index_dir,
            title_boost=settings.title_boost,
            heading_boost=settings.heading_boost,
            context_in_body=settings.lexical_context,
            exact_below=settings.exact_search_below,
            journal_limit=settings.dense_journal_limit,
            threads=settings.index_threads,
        )
    if settings.index_backend == "postgres":
        from fathom.index.postgres import PostgresBackend

        url = settings.resolved_database_url
        if not url.startswith("postgresql"):
            raise ConfigError(
                "index_backend 'postgres' keeps the search index in the store's PostgreSQL database: "
                "set database_url to a postgresql+psycopg:// URL (`fathom pg start` prints one)",
                code="config.index_backend",
            )
        return PostgresBackend(
            url,
            context_in_body=settings.lexical_context,
            ef_search=settings.postgres_ef_search,
            hnsw_m=settings.postgres_hnsw_m,
            hnsw_ef_construction=settings.postgres_hnsw_ef_construction,
            replicas=replicas,
        )
    raise ConfigError(f"unknown index backend {settings.index_backend!r}", code="config.index_backend")
