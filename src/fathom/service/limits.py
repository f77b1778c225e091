"""Per-key token buckets: in-process for one server, Redis for several sharing the limits.

A bucket holds up to ``capacity`` tokens and refills at ``rate`` tokens a second. ``take``
removes tokens only when enough are there; ``charge`` removes them even into debt (answer
tokens are known only after the answer), so the next ``take`` waits for the debt to refill.

When Redis does not answer, ``take`` and ``charge`` raise
:class:`~fathom.errors.BackendUnavailable` (HTTP 503 with ``Retry-After``): limits fail closed,
so an outage never lifts them, and each call reconnects, so they work again once Redis is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
import structlog

from fathom.errors import BackendUnavailable

__all__ = ["Buckets", "LocalBuckets", "RedisBuckets", "create_buckets"]

log = structlog.get_logger(__name__)


class Buckets(Protocol):
    def take(self, key: str, capacity: float, rate: float, amount: float = 1.0) -> float:
        """Take ``amount`` tokens; returns 0 when granted, else the seconds until they are there."""
        ...

    def charge(self, key: str, capacity: float, rate: float, amount: float) -> None:
        """Remove ``amount`` tokens even below zero."""
        ...

    def ping(self) -> bool:
        """Whether the backend is reachable."""
        ...


class LocalBuckets:
    """Token buckets in this process's memory (the embedded default).

    ``clock`` gives the time in seconds (monotonic by default); tests pass a clock they move
    themselves, so refills never depend on how fast a loaded machine runs the test.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, capacity: float, rate: float, now: float) -> float:
        tokens, stamp = self._buckets.get(key, (capacity, now))
        return min(capacity, tokens + (now - stamp) * rate)

    def take(self, key: str, capacity: float, rate: float, amount: float = 1.0) -> float:
        with self._lock:
            now = self._clock()
            tokens = self._level(key, capacity, rate, now)
            if tokens >= amount:
                self._buckets[key] = (tokens - amount, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (amount - tokens) / rate

    def charge(self, key: str, capacity: float, rate: float, amount: float) -> None:
        with self._lock:
            now = self._clock()
            self._buckets[key] = (self._level(key, capacity, rate, now) - amount, now)

    def ping(self) -> bool:
        return True


# KEYS[1] bucket; ARGV capacity, rate, amount, mode (1: take if enough, 0: charge into debt).
# Redis's own clock (TIME) keeps every server process on one time base.
_BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local mode = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - stamp) * rate)
local wait = 0
if mode == 1 and tokens < amount then
  wait = (amount - tokens) / rate
else
  tokens = tokens - amount
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(wait)
"""


class RedisBuckets:
    """Token buckets in Redis, shared by every server process (one Lua script per call)."""

    def __init__(self, url: str, *, namespace: str = "fathom") -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._client.register_script(_BUCKET_SCRIPT)
        self._namespace = namespace

    def _run(self, key: str, capacity: float, rate: float, amount: float, mode: int) -> float:
        bucket = f"{self._namespace}:bucket:{key}"
        try:
            result = self._script(keys=[bucket], args=[capacity, rate, amount, mode])
        except redis.RedisError as exc:
            log.warning("limits.redis_unavailable", error_type=type(exc).__name__)
            raise BackendUnavailable(
                "the rate-limit store does not answer; retry shortly", code="backend.unavailable"
            ) from None
        return float(result.decode() if isinstance(result, bytes) else result)

    def take(self, key: str, capacity: float, rate: float, amount: float = 1.0) -> float:
        return self._run(key, capacity, rate, amount, 1)

    def charge(self, key: str, capacity: float, rate: float, amount: float) -> None:
        self._run(key, capacity, rate, amount, 0)

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False


def create_buckets(redis_url: str | None, namespace: str = "fathom") -> Buckets:
    """Redis buckets when a Redis URL is configured, else in-process ones."""
    if redis_url:
        return RedisBuckets(redis_url, namespace=namespace)
    return LocalBuckets()
