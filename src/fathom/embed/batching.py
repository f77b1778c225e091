"""Micro-batching of query embeddings: concurrent queries share one forward pass of the model.

One short query through a transformer on a CPU costs about as much as several together (the
cost is reading the weights and running dozens of small kernels, not arithmetic), so a server
that embeds each request's query on its own spends most of its model time on overhead.
:class:`BatchingEmbedder` wraps an embedder and lets request threads hand it their queries:
the first caller to find the model idle runs the forward pass on its own thread (no hand-off
to a pool thread, which is slower for torch's kernels), and queries that arrive while a pass
runs wait and go through the next pass together. A lone query is never held back: it is
embedded as soon as it arrives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import structlog

from fathom.embed.base import Embedder
from fathom.errors import ProviderError

__all__ = ["BatchObserver", "BatchingEmbedder", "QueryBatchEmbedder"]

log = structlog.get_logger(__name__)

# Called with the number of queries in each forward pass.
BatchObserver = Callable[[int], None]


@runtime_checkable
class QueryBatchEmbedder(Protocol):
    """An embedder that embeds several queries in one call (one forward pass of its model)."""

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Float32 array of shape (len(texts), dim): row i is exactly ``embed_query(texts[i])``."""
        ...


class _Pending:
    """One query waiting for its vector, or to be handed the model to run the next pass."""

    __slots__ = ("done", "error", "text", "vector", "woken")

    def __init__(self, text: str) -> None:
        self.text = text
        self.woken = threading.Event()
        self.done = False
        self.vector: np.ndarray | None = None
        self.error: Exception | None = None


class BatchingEmbedder:
    """An :class:`Embedder` whose :meth:`embed_query` batches concurrent callers.

    Args:
        inner: the embedder doing the work; its ``embed_queries`` (when it has one) must give
            each row exactly what ``embed_query`` gives for that text alone.
        max_batch: most queries in one forward pass.
        window_ms: how long a forward pass may wait for more queries to join it, and only
            while other queries are already waiting (a lone query never waits).
        observe: receives the size of each forward pass (metrics).

    Everything but :meth:`embed_query` is passed through unchanged.
    """

    def __init__(
        self,
        inner: Embedder,
        *,
        max_batch: int = 32,
        window_ms: float = 0.0,
        observe: BatchObserver | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.inner = inner
        self.max_batch = max_batch
        self.window_s = max(0.0, window_ms) / 1000
        self.observe = observe
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._queue: list[_Pending] = []
        self._running = False  # a thread holds the model (runs or is about to run a pass)
        batch = inner.embed_queries if isinstance(inner, QueryBatchEmbedder) else None
        self._embed_batch: Callable[[list[str]], np.ndarray] | None = batch

    # -- the Embedder protocol: everything but queries passes through -----------------------

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_spans(text)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Several queries in one forward pass of the inner model (or one by one without one)."""
        if self._embed_batch is not None:
            return self._embed_batch(texts)
        return np.stack([self.inner.embed_query(text) for text in texts])

    # -- batching ---------------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Queries waiting for the next forward pass (not those in the one running)."""
        with self._lock:
            return len(self._queue)

    def embed_query(self, text: str) -> np.ndarray:
        """The query's vector, from one forward pass shared with the queries waiting with it.

        Raises:
            Exception: whatever the model raised for this query alone (the other queries of
                its pass still get their vectors).
        """
        mine = _Pending(text)
        with self._lock:
            leads = not self._running
            if leads:
                self._running = True
            else:
                self._queue.append(mine)
                self._arrived.notify()
        if not leads:
            mine.woken.wait()  # set when the vector is ready, or when handed the model
        if not mine.done:
            self._lead(mine)
        if mine.error is not None:
            raise mine.error
        assert mine.vector is not None
        return mine.vector

    def _lead(self, mine: _Pending) -> None:
        """Run one pass for ``mine`` and the oldest waiting queries, then hand the model to the
        next waiting query's thread (or leave it idle)."""
        batch = [mine]
        try:
            with self._lock:
                if self._queue and self.window_s > 0:
                    self._collect()
                batch += self._queue[: self.max_batch - 1]
                del self._queue[: self.max_batch - 1]
            self._run(batch)
        finally:
            for item in batch:
                if not item.done:  # the pass was interrupted (not an error of the model)
                    item.error = ProviderError("the query was not embedded", code="embed.interrupted")
                    item.done = True
                    item.woken.set()
            with self._lock:
                successor = self._queue.pop(0) if self._queue else None
                self._running = successor is not None
            if successor is not None:
                successor.woken.set()

    def _collect(self) -> None:
        """Wait up to the window (the lock released while waiting) for the batch to fill."""
        deadline = time.monotonic() + self.window_s
        while len(self._queue) < self.max_batch - 1:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._arrived.wait(left)

    def _run(self, batch: list[_Pending]) -> None:
        """One forward pass for the batch; if it fails, each query alone, so an error fails
        only the query that caused it."""
        texts = list(dict.fromkeys(item.text for item in batch))
        if self.observe is not None:
            self.observe(len(texts))
        results: dict[str, np.ndarray | Exception]
        try:
            vectors = self.embed_queries(texts)
            results = {text: vectors[row] for row, text in enumerate(texts)}
        except Exception as exc:
            if len(texts) == 1:
                results = {texts[0]: exc}
            else:
                log.warning("embed.batch_failed", queries=len(texts))
                results = {text: self._embed_alone(text) for text in texts}
        for item in batch:
            result = results[item.text]
            if isinstance(result, Exception):
                item.error = result
            else:
                item.vector = result
            item.done = True
            item.woken.set()

    def _embed_alone(self, text: str) -> np.ndarray | Exception:
        try:
            vector: np.ndarray = self.embed_queries([text])[0]
        except Exception as exc:
            return exc
        return vector
