"""Vectors of texts that come back again and again (answer sentences), kept by exact text."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

__all__ = ["TextVectorCache"]


class TextVectorCache:
    """An LRU of the vectors ``embed`` gives, by exact text; misses are embedded in one call.

    Args:
        embed: embeds a list of texts (rows in order), e.g. ``Embedder.embed_documents``.
        size: most texts kept (0: no cache).
    """

    def __init__(self, embed: Callable[[list[str]], np.ndarray], size: int) -> None:
        self._embed = embed
        self._size = max(0, size)
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Float32 array of shape (len(texts), dim)."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    found[text] = vector
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        if missing:
            computed = self._embed(missing)
            with self._lock:
                for text, vector in zip(missing, computed, strict=True):
                    found[text] = vector
                    if self._size:
                        self._vectors[text] = vector
                while len(self._vectors) > self._size:
                    self._vectors.popitem(last=False)
        if not texts:
            return self._embed([])
        return np.stack([found[text] for text in texts])
