"""The embedder of a serve process: the configured model, with concurrent queries batched."""

from __future__ import annotations

import structlog

from fathom.config import Settings
from fathom.embed.base import Embedder, create_embedder
from fathom.embed.batching import BatchingEmbedder

__all__ = ["serving_embedder"]

log = structlog.get_logger(__name__)


def serving_embedder(settings: Settings) -> Embedder:
    """The configured embedder, loaded now, its queries micro-batched unless ``query_batch_max``
    is 1 or the model cannot batch queries without changing their vectors."""
    embedder = create_embedder(
        settings.embedder,
        device=settings.device,
        batch_size=settings.embed_batch_size,
        query_precision=settings.query_precision,
    )
    if settings.query_batch_max <= 1:
        return embedder
    if not getattr(embedder, "batches_queries", True):
        log.warning("embed.query_batching_off", embedder=embedder.name)
        return embedder
    return BatchingEmbedder(
        embedder, max_batch=settings.query_batch_max, window_ms=settings.query_batch_window_ms
    )
