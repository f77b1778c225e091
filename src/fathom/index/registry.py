"""Build the configured search backend (the ``index_backend`` setting)."""

from __future__ import annotations

from fathom.config import Settings
from fathom.errors import ConfigError
from fathom.index.backend import SearchBackend

__all__ = ["create_backend"]


def create_backend(settings: Settings) -> SearchBackend:
    """The backend ``settings.index_backend`` names, opened over this home or database.

    Raises:
        ConfigError: an unknown backend name.
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
    raise ConfigError(f"unknown index backend {settings.index_backend!r}", code="config.index_backend")
