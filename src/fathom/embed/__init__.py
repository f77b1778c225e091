"""Embedding providers behind the :class:`Embedder` protocol."""

from fathom.embed.base import Embedder, create_embedder

__all__ = ["Embedder", "create_embedder"]
