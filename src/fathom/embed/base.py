"""The embedder protocol and the registry that builds one from a config string."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from fathom.errors import ConfigError

__all__ = ["Embedder", "create_embedder"]


@runtime_checkable
class Embedder(Protocol):
    """Turns text into unit-length vectors and measures text in its own tokens."""

    @property
    def name(self) -> str:
        """The config string that identifies this model (stored with every embedding)."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest input the model reads; longer text is truncated by the model."""
        ...

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Embed passages: float32 array of shape (len(texts), dim), rows of unit length."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query: float32 array of shape (dim,), unit length."""
        ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the model's tokens in ``text`` (no special tokens)."""
        ...


def create_embedder(
    spec: str, *, device: str = "cpu", batch_size: int = 64, query_precision: str = "float32"
) -> Embedder:
    """Build the embedder a config string names.

    ``sentence-transformers:NAME`` loads a sentence-transformers model by name or
    path (``all-MiniLM-L6-v2`` comes from the packaged weights); ``hash:DIM`` is a
    deterministic, model-free embedder for tests and smoke runs. ``query_precision``
    ``int8`` embeds queries with an int8 copy of the model on CPU (faster, slightly less exact).

    Raises:
        ConfigError: the string names no known provider, or the model cannot be loaded.
    """
    provider, _, argument = spec.partition(":")
    if not argument:
        raise ConfigError(f"embedder {spec!r} must look like 'PROVIDER:MODEL', e.g. 'hash:256'")
    if provider == "sentence-transformers":
        from fathom.embed.sentence_transformers import SentenceTransformerEmbedder

        if query_precision not in ("float32", "int8"):
            raise ConfigError(f"query precision {query_precision!r} must be 'float32' or 'int8'")
        return SentenceTransformerEmbedder(
            argument,
            device=device,
            batch_size=batch_size,
            query_precision="int8" if query_precision == "int8" else "float32",
        )
    if provider == "hash":
        from fathom.embed.hashing import HashingEmbedder

        try:
            dim = int(argument)
        except ValueError:
            raise ConfigError(
                f"embedder {spec!r}: the hash embedder takes a dimension, e.g. 'hash:256'"
            ) from None
        return HashingEmbedder(dim)
    raise ConfigError(f"unknown embedder provider {provider!r}; known: sentence-transformers, hash")
