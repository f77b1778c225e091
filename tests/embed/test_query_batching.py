"""Micro-batching of query embeddings (``fathom serve``): concurrent queries share one forward pass,
each gets exactly the vector it gets alone, a lone query never waits, and one query's error fails
only that query."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fathom.config import DEFAULT_EMBEDDER
from fathom.embed.batching import BatchingEmbedder
from fathom.embed.hashing import HashingEmbedder
from fathom.embed.sentence_transformers import SentenceTransformerEmbedder, _int8_copy
from fathom.errors import ProviderError

QUERIES = [
    "ALDH1 expression is associated with poorer prognosis in breast cancer",
    "how long to steep green tea",
    "Vitamin D deficiency raises the risk of multiple sclerosis",
    "bees dance",
    "What chunk size do we use for long technical manuals and their appendices?",
]


class Gated:
    """The embedder a batcher wraps, with its first forward pass held until released, so the
    test decides which queries wait together (no sleeps, no timing)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.passes: list[list[str]] = []
        self.release = threading.Event()
        self._first = True

    name = property(lambda self: self.inner.name)
    dim = property(lambda self: self.inner.dim)
    max_tokens = property(lambda self: self.inner.max_tokens)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)  # type: ignore[no-any-return]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_spans(text)  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.passes.append(list(texts))
        if self._first:
            self._first = False
            assert self.release.wait(60), "the test never released the first pass"
        if hasattr(self.inner, "embed_queries"):
            return self.inner.embed_queries(texts)  # type: ignore[no-any-return]
        return np.stack([self.inner.embed_query(text) for text in texts])


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll a state the test is driving towards (a guard against hanging, not a timing check)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "the batcher never reached the expected state"
        time.sleep(0.005)


def concurrently(batcher: BatchingEmbedder, gated: Gated, texts: list[str]) -> dict[str, Any]:
    """Embed ``texts[0]`` (its pass held), then the rest while it is held; results by text."""
    results: dict[str, Any] = {}

    def embed(text: str) -> None:
        try:
            results[text] = batcher.embed_query(text)
        except Exception as exc:
            results[text] = exc

    threads = [threading.Thread(target=embed, args=(texts[0],))]
    threads[0].start()
    wait_until(lambda: len(gated.passes) == 1)
    for text in texts[1:]:
        threads.append(threading.Thread(target=embed, args=(text,)))
        threads[-1].start()
    wait_until(lambda: batcher.waiting == len(texts) - 1)
    gated.release.set()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    return results


@pytest.mark.integration
@pytest.mark.parametrize("precision", ["int8", "float32"])
def test_concurrent_queries_share_one_forward_pass_and_each_gets_its_own_vector(precision: str):
    model = SentenceTransformerEmbedder(
        DEFAULT_EMBEDDER.partition(":")[2], query_precision=precision, query_cache_size=0
    )
    assert model.batches_queries
    # Each query alone, through sentence-transformers' own encode (int8: a plain int8 copy),
    # as fathom embedded queries before batching existed.
    reference = _int8_copy(model._model) if precision == "int8" else model._model
    alone = {
        text: reference.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
        for text in QUERIES
    }
    sizes: list[int] = []
    gated = Gated(model)
    batcher = BatchingEmbedder(gated, max_batch=8, observe=sizes.append)

    results = concurrently(batcher, gated, QUERIES)

    assert gated.passes[0] == [QUERIES[0]]
    assert sorted(gated.passes[1]) == sorted(QUERIES[1:])  # four requests, one forward pass
    assert len(gated.passes) == 2 and sizes == [1, 4]
    for text in QUERIES:
        assert results[text].shape == (model.dim,)
        np.testing.assert_allclose(results[text], alone[text], rtol=0, atol=1e-6)


def test_a_lone_query_does_not_wait_for_the_window():
    inner = HashingEmbedder(64)
    sizes: list[int] = []
    batcher = BatchingEmbedder(inner, max_batch=32, window_ms=100, observe=sizes.append)
    batcher.window_s = 600.0  # a ten-minute window: a lone query that waited would hang here
    done: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: done.append(batcher.embed_query("a lone query")))
    worker.start()
    worker.join(60)
    assert not worker.is_alive() and sizes == [1]
    np.testing.assert_array_equal(done[0], inner.embed_query("a lone query"))


def test_the_window_holds_a_pass_only_until_the_batch_is_full():
    gated = Gated(HashingEmbedder(64))
    batcher = BatchingEmbedder(gated, max_batch=3, window_ms=100)
    batcher.window_s = 600.0
    texts = ["first", "second", "third", "fourth", "fifth"]
    results = concurrently(batcher, gated, texts)
    # Four waited behind the first pass: full batches of three leave at once, the rest next.
    assert [len(batch) for batch in gated.passes] == [1, 3, 1]
    assert all(isinstance(results[text], np.ndarray) for text in texts)


class Poisoned(HashingEmbedder):
    """A model that fails on one input (a stand-in for a model error on one query)."""

    def embed_query(self, text: str) -> np.ndarray:
        if "poison" in text:
            raise ProviderError("the model failed on this query", code="embed.failed")
        return super().embed_query(text)


def test_an_error_in_one_query_fails_only_that_query():
    inner = Poisoned(64)
    gated = Gated(inner)
    batcher = BatchingEmbedder(gated, max_batch=8)
    texts = ["held first", "a good query", "poison pill", "another good query"]

    results = concurrently(batcher, gated, texts)

    assert sorted(gated.passes[1]) == sorted(texts[1:])  # tried together first
    assert isinstance(results["poison pill"], ProviderError)
    for text in ("held first", "a good query", "another good query"):
        np.testing.assert_array_equal(results[text], inner.embed_query(text))
    # The batcher is not stuck: the next query is embedded as usual.
    np.testing.assert_array_equal(batcher.embed_query("after"), inner.embed_query("after"))
    with pytest.raises(ProviderError):
        batcher.embed_query("poison again")


def test_the_same_query_twice_in_a_batch_is_embedded_once():
    gated = Gated(HashingEmbedder(64))
    batcher = BatchingEmbedder(gated, max_batch=8)
    results: list[np.ndarray] = []
    lock = threading.Lock()

    def embed(text: str) -> None:
        vector = batcher.embed_query(text)
        with lock:
            results.append(vector)

    first = threading.Thread(target=embed, args=("held",))
    first.start()
    wait_until(lambda: len(gated.passes) == 1)
    twins = [threading.Thread(target=embed, args=("same words",)) for _ in range(2)]
    for thread in twins:
        thread.start()
    wait_until(lambda: batcher.waiting == 2)
    gated.release.set()
    for thread in (first, *twins):
        thread.join(60)
    assert gated.passes[1] == ["same words"]
    assert len(results) == 3
