"""Retry backoff and a per-provider circuit breaker."""

from __future__ import annotations

import random
import time

__all__ = ["CircuitBreaker", "backoff_delay"]


def backoff_delay(attempt: int, base: float, *, cap: float = 30.0, retry_after: float | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): exponential with full jitter.

    A server's ``Retry-After`` is honoured when given, up to ``cap``.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not crypto


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; lets one trial call through after ``cooldown``.

    While open, callers skip the provider at once instead of waiting for timeouts.
    """

    def __init__(self, failures: int, cooldown: float) -> None:
        self._threshold = failures
        self._cooldown = cooldown
        self._consecutive = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if time.monotonic() - self._opened_at >= self._cooldown else "open"

    def allow(self) -> bool:
        """Whether a call may go to the provider now."""
        return self.state != "open"

    def record_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._consecutive += 1
        if self._consecutive >= self._threshold or self._opened_at is not None:
            self._opened_at = time.monotonic()
