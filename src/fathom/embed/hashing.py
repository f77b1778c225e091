"""A deterministic embedder with no model: hashed word and character-trigram features.

It has no semantic knowledge; it exists so tests and smoke runs can exercise the
whole pipeline in milliseconds. Real deployments use a sentence-transformers model.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

__all__ = ["HashingEmbedder"]

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Feature-hashing embedder: ``hash:DIM``."""

    def __init__(self, dim: int = 256) -> None:
        self._dim = dim

    @property
    def name(self) -> str:
        return f"hash:{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return 100_000

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self._dim, dtype=np.float32)
        for match in _WORD.finditer(text.lower()):
            word = match.group()
            features = [word] + [word[i : i + 3] for i in range(max(1, len(word) - 2))]
            for weight, feature in zip([1.0] + [0.3] * len(features), features, strict=False):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self._dim
                sign = 1.0 if digest[4] & 1 else -1.0
                vector[bucket] += sign * weight
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]
