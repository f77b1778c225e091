"""Webhook delivery workers: threads in each serve process that send the outbox.

A worker claims one endpoint at a time with a lease (so several processes share the work, and
an endpoint whose worker died is taken again once the lease runs out), then POSTs its pending
deliveries oldest first, each signed ``X-Fathom-Signature: sha256=<HMAC-SHA256 of the body>``.
Every attempt goes through the URL-ingest SSRF guard with one total deadline
(``webhook_timeout_seconds``), so a receiver that hangs costs one worker that long and no more;
request threads never send webhooks. A failed attempt (no answer, a timeout, any status but
2xx) backs the endpoint off exponentially with jitter; deliveries pending past
``webhook_retry_horizon_seconds`` are dead-lettered. Delivery is at least once: a worker that
dies after the receiver got the body but before recording it sends it again, with the same
event id.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable

import structlog

from fathom.config import Settings
from fathom.errors import FathomError
from fathom.ingest.fetch import post_once
from fathom.store.webhooks import ClaimedEndpoint, PendingDelivery, WebhookStore

__all__ = ["DeliveryWorkers", "backoff_seconds", "sign"]

log = structlog.get_logger(__name__)

_POLL_SECONDS = 1.0
# Deliveries one claim sends before the endpoint is released (others get their turn).
_BATCH = 50
_PURGE_EVERY_SECONDS = 3600.0

# Called with the outcome of each attempt: "delivered", "failed" or "dead" (per dead letter).
DeliveryObserver = Callable[[str], None]


def sign(secret: str, body: bytes) -> str:
    """The ``X-Fathom-Signature`` header value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def backoff_seconds(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after the ``failures``-th consecutive failure: ``base * 2^(failures-1)``
    up to ``cap``, with "equal jitter" (between half of it and all of it), so endpoints that
    failed together do not retry together."""
    delay = min(cap, base * 2 ** max(0, min(failures - 1, 40)))
    return float(delay / 2 + rng.uniform(0, delay / 2))


class DeliveryWorkers:
    """A pool of delivery threads (see the module docstring)."""

    def __init__(
        self, settings: Settings, store: WebhookStore, *, observer: DeliveryObserver | None = None
    ) -> None:
        self._settings = settings
        self._store = store
        self._observer = observer
        self._count = settings.webhook_workers
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._rng = random.Random()
        self._next_purge = 0.0
        # A claim outlives the longest attempt, with room for the database round trips.
        self.lease_seconds = settings.webhook_timeout_seconds * 2 + 5
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def start(self) -> None:
        for index in range(self._count):
            thread = threading.Thread(
                target=self._run, args=(f"{self.name}:w{index}",), name=f"fathom-webhook-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        """An event may have been queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; an attempt in flight ends by its deadline."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self, worker: str) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self._purge()
                endpoint = self._store.claim(worker, self.lease_seconds)
            except Exception as exc:  # the store may be unreachable for a while; keep polling
                if not failing:
                    log.warning("webhooks.claim_failed", error_type=type(exc).__name__)
                failing, endpoint = True, None
            else:
                if failing:
                    log.info("webhooks.claim_recovered")
                failing = False
            if endpoint is None:
                self._wake.wait(_POLL_SECONDS)
                self._wake.clear()
                continue
            try:
                self._serve(endpoint, worker)
            except Exception as exc:  # the lease runs out and another worker resumes
                log.warning(
                    "webhooks.endpoint_failed", webhook_id=endpoint.webhook_id, error_type=type(exc).__name__
                )

    def _purge(self) -> None:
        days = self._settings.webhook_retention_days
        if not days or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + _PURGE_EVERY_SECONDS
        removed = self._store.purge(days * 86_400)
        if removed:
            log.info("webhooks.purged", deliveries=removed)

    def _serve(self, endpoint: ClaimedEndpoint, worker: str) -> None:
        """Send the endpoint's pending deliveries in order until one fails or none is left."""
        try:
            for _ in range(_BATCH):
                if self._stop.is_set():
                    return
                delivery = self._store.next_pending(endpoint.webhook_id)
                if delivery is None or not self._store.renew(endpoint.webhook_id, worker, self.lease_seconds):
                    return
                if not self._attempt(endpoint, delivery):
                    return
                endpoint = ClaimedEndpoint(endpoint.webhook_id, endpoint.url, endpoint.secret, 0)
        finally:
            self._store.release(endpoint.webhook_id, worker)

    def _attempt(self, endpoint: ClaimedEndpoint, delivery: PendingDelivery) -> bool:
        """One POST of one delivery; records the outcome and returns whether it was delivered."""
        settings = self._settings
        body = delivery.body.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "fathom-webhooks",
            "X-Fathom-Event": delivery.event_type,
            "X-Fathom-Event-Id": delivery.event_id,
            "X-Fathom-Delivery": delivery.delivery_id,
            "X-Fathom-Signature": sign(endpoint.secret, body),
        }
        status: int | None = None
        try:
            status = post_once(
                endpoint.url,
                body,
                headers,
                allow=settings.webhook_url_allow,
                timeout_seconds=settings.webhook_timeout_seconds,
            )
        except FathomError as exc:
            error = exc.code
        else:
            if 200 <= status < 300:
                self._store.delivered(endpoint.webhook_id, delivery.delivery_id, status)
                log.info(
                    "webhook.delivered",
                    webhook_id=endpoint.webhook_id,
                    event_id=delivery.event_id,
                    attempt=delivery.attempts + 1,
                )
                self._observe("delivered")
                return True
            error = f"http.{status}"
        failures = endpoint.failures + 1
        wait = backoff_seconds(
            failures, settings.webhook_retry_base_seconds, settings.webhook_retry_max_seconds, self._rng
        )
        dead = self._store.failed(
            endpoint.webhook_id,
            delivery.delivery_id,
            status=status,
            error=error,
            retry_at=time.time() + wait,
            horizon_seconds=settings.webhook_retry_horizon_seconds,
        )
        log.info(
            "webhook.failed",
            webhook_id=endpoint.webhook_id,
            event_id=delivery.event_id,
            attempt=delivery.attempts + 1,
            error=error,
            retry_in=round(wait, 2),
            dead_lettered=dead,
        )
        self._observe("failed")
        for _ in range(dead):
            self._observe("dead")
        return False

    def _observe(self, outcome: str) -> None:
        if self._observer is not None:
            self._observer(outcome)
