"""The sentence-vector cache of extractive answers: a text is embedded once while it stays cached."""

from __future__ import annotations

import numpy as np

from fathom.embed.cache import TextVectorCache
from fathom.embed.hashing import HashingEmbedder


def test_repeated_texts_are_embedded_once_and_get_the_same_vectors():
    model = HashingEmbedder(32)
    embedded: list[str] = []

    def embed(texts: list[str]) -> np.ndarray:
        embedded.extend(texts)
        return model.embed_documents(texts)

    cache = TextVectorCache(embed, size=2)
    first = cache(["alpha", "beta", "alpha"])
    np.testing.assert_array_equal(first, model.embed_documents(["alpha", "beta", "alpha"]))
    assert embedded == ["alpha", "beta"]
    np.testing.assert_array_equal(cache(["beta", "gamma"]), model.embed_documents(["beta", "gamma"]))
    assert embedded == ["alpha", "beta", "gamma"]
    cache(["alpha"])  # evicted (the least recently used of three, with room for two)
    assert embedded == ["alpha", "beta", "gamma", "alpha"]
    assert cache([]).shape == (0, 32)


def test_size_zero_keeps_nothing():
    model = HashingEmbedder(16)
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return model.embed_documents(texts)

    cache = TextVectorCache(embed, size=0)
    cache(["same"])
    cache(["same"])
    assert calls == [["same"], ["same"]]
