"""Runs async providers from synchronous code: one event loop on a daemon thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


async def _next(iterator: AsyncIterator[T]) -> T:
    return await anext(iterator)


class LoopThread:
    """An event loop on its own thread; coroutines and async iterators run on it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fathom-llm", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def iterate(self, iterator: AsyncIterator[T]) -> Generator[T, None, None]:
        """Pull an async iterator item by item; closing the result closes the iterator."""
        try:
            while True:
                try:
                    yield self.run(_next(iterator))
                except StopAsyncIteration:
                    return
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                self.run(close())

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
