"""Retry backoff and the circuit breaker, on their own."""

from __future__ import annotations

import time

from fathom.llm.resilience import CircuitBreaker, backoff_delay


def test_backoff_grows_with_jitter_and_honours_retry_after():
    delays = [backoff_delay(3, 0.5) for _ in range(200)]
    assert all(0 <= d <= 2.0 for d in delays) and max(delays) > 1.0 and len(set(delays)) > 100
    assert backoff_delay(1, 0.5, retry_after=4) == 4
    assert backoff_delay(1, 0.5, retry_after=600) == 30


def test_breaker_opens_then_lets_one_trial_through_after_cooldown():
    breaker = CircuitBreaker(failures=2, cooldown=0.05)
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    time.sleep(0.06)
    assert breaker.state == "half-open" and breaker.allow()
    breaker.record_failure()  # the trial failed: open again at once
    assert not breaker.allow()
    time.sleep(0.06)
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()
