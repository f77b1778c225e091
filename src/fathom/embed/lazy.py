"""An embedder that loads the real one on first use.

An ingest whose files are all unchanged never chunks or embeds, so it must not pay for the
model load (torch and sentence-transformers alone cost seconds): the ingest pipeline gets this
stand-in, which asks for the real embedder only when a method needs it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fathom.embed.base import Embedder

__all__ = ["LazyEmbedder"]


class LazyEmbedder:
    """Satisfies :class:`Embedder`; ``load`` is called (once) by the first use of any member."""

    def __init__(self, load: Callable[[], Embedder]) -> None:
        self._load = load
        self._embedder: Embedder | None = None

    @property
    def loaded(self) -> bool:
        return self._embedder is not None

    def _real(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._load()
        return self._embedder

    @property
    def name(self) -> str:
        return self._real().name

    @property
    def dim(self) -> int:
        return self._real().dim

    @property
    def max_tokens(self) -> int:
        return self._real().max_tokens

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self._real().embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._real().embed_query(text)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self._real().token_spans(text)
