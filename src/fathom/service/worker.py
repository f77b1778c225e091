"""Ingestion workers: threads in each serve process that take jobs from the store of record.

Jobs live in the database, so a worker that dies loses nothing: its lease runs out and a
worker in this or another process takes the job again. Workers sleep until a job is queued:
an in-process event wakes them in the embedded mode, a Redis channel across processes in the
shared mode, and a short poll catches anything a signal missed.

Outages are survived, not fatal: while the database does not answer, workers keep polling;
while Redis does not answer, the channel's listener reconnects with backoff (and workers still
poll), so no process needs a restart when either comes back.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

import redis
import structlog

from fathom.api import Fathom
from fathom.errors import FathomError
from fathom.store.jobs import ClaimedJob
from fathom.store.retention import purge_expired

__all__ = ["JobWorkers"]

log = structlog.get_logger(__name__)

_POLL_SECONDS = 1.0
_RECONNECT_MIN_SECONDS = 0.5
_RECONNECT_MAX_SECONDS = 10.0
_REDIS_HEALTH_CHECK_SECONDS = 10
_EXPIRE_EVERY_SECONDS = 3600.0

# Called with the job's final status ("succeeded" or "failed") and its error code.
JobObserver = Callable[[str, str | None], None]


class JobWorkers:
    """A pool of worker threads plus the wake-up signal shared with the request handlers."""

    def __init__(
        self,
        fathom: Fathom,
        *,
        threads: int,
        redis_url: str | None = None,
        channel: str = "fathom:jobs",
        observer: JobObserver | None = None,
    ) -> None:
        self._fathom = fathom
        self._count = threads
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._observer = observer
        self._channel = channel
        self._redis = (
            redis.Redis.from_url(
                redis_url,
                socket_timeout=5,
                socket_connect_timeout=5,
                health_check_interval=_REDIS_HEALTH_CHECK_SECONDS,
            )
            if redis_url
            else None
        )
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._next_expiry = 0.0

    def start(self) -> None:
        for index in range(self._count):
            thread = threading.Thread(
                target=self._run, args=(index,), name=f"fathom-job-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        if self._redis is not None and self._count:
            listener = threading.Thread(
                target=self._listen, args=(self._redis,), name="fathom-job-signals", daemon=True
            )
            listener.start()
            self._threads.append(listener)
        self._wake.set()  # jobs left by a previous run

    def notify(self) -> None:
        """A job was queued: wake a worker here, and in the shared mode every process's workers."""
        self._wake.set()
        if self._redis is not None:
            try:
                self._redis.publish(self._channel, b"1")
            except redis.RedisError:
                log.warning("jobs.notify_failed")  # workers still poll

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; a job in progress finishes, or its lease runs out and it is retried."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        if self._redis is not None:
            self._redis.close()

    def _listen(self, client: redis.Redis) -> None:
        """Wake the workers on each "job queued" message; resubscribe with backoff after an outage."""
        backoff = _RECONNECT_MIN_SECONDS
        lost = False
        while not self._stop.is_set():
            pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self._channel)
                if lost:
                    log.info("jobs.signals_reconnected")
                    lost, backoff = False, _RECONNECT_MIN_SECONDS
                    self._wake.set()  # a job may have been queued while the channel was gone
                while not self._stop.is_set():
                    if pubsub.get_message(timeout=_POLL_SECONDS) is not None:
                        self._wake.set()
            except redis.RedisError as exc:
                if not lost:
                    log.warning("jobs.signals_lost", error_type=type(exc).__name__)
                lost = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _RECONNECT_MAX_SECONDS)
            finally:
                pubsub.close()

    def _run(self, index: int) -> None:
        worker = f"{self.name}:{index}"
        failing = False
        while not self._stop.is_set():
            if index == 0:
                self._expire()
            try:
                job = self._fathom.jobs.claim(worker)
            except Exception as exc:  # the store may be unreachable for a while; keep polling
                if not failing:
                    log.warning("jobs.claim_failed", error_type=type(exc).__name__)
                failing, job = True, None
            else:
                if failing:
                    log.info("jobs.claim_recovered")
                failing = False
            if job is None:
                self._wake.wait(_POLL_SECONDS)
                self._wake.clear()
                continue
            self._process(job, worker)

    def _expire(self) -> None:
        """Apply ``retention_days`` once an hour (:mod:`fathom.store.retention`)."""
        policy = self._fathom.settings.retention_days
        if not policy or time.monotonic() < self._next_expiry:
            return
        self._next_expiry = time.monotonic() + _EXPIRE_EVERY_SECONDS
        try:
            removed = purge_expired(self._fathom.store, policy)
        except Exception as exc:  # the store may be unreachable for a while; try next time
            log.warning("retention.failed", error_type=type(exc).__name__)
            return
        if any(removed.values()):
            log.info("retention.purged", **removed)

    def _process(self, job: ClaimedJob, worker: str) -> None:
        log.info("job.started", job_id=job.job_id, attempt=job.attempt)
        done = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(job.job_id, worker, done), daemon=True)
        heartbeat.start()
        error_code: str | None = None
        reason: str | None = None
        try:
            outcome = self._fathom.run_job(job)
            if outcome.status == "failed":
                error_code, reason = outcome.error_code or "ingest.failed", outcome.message
        except FathomError as exc:  # e.g. storage.full: the job fails with its stable code
            log.warning("job.failed", job_id=job.job_id, code=exc.code)
            error_code, reason = exc.code, exc.message
        except Exception as exc:  # one bad job fails alone; the worker goes on
            log.exception("job.crashed", job_id=job.job_id)
            error_code, reason = "job.crashed", f"ingestion stopped with {type(exc).__name__}"
        finally:
            done.set()
            heartbeat.join()
        try:
            self._fathom.jobs.finish(job.job_id, worker, error_code=error_code, reason=reason)
        except Exception as exc:  # the store went away: the lease runs out and the job is retried
            log.warning("job.finish_failed", job_id=job.job_id, error_type=type(exc).__name__)
            return
        status = "failed" if error_code else "succeeded"
        log.info("job.finished", job_id=job.job_id, status=status, error_code=error_code)
        if self._observer is not None:
            self._observer(status, error_code)

    def _heartbeat(self, job_id: str, worker: str, done: threading.Event) -> None:
        interval = self._fathom.jobs.lease_seconds / 3
        while not done.wait(interval):
            try:
                if not self._fathom.jobs.renew(job_id, worker):
                    log.warning("job.lease_lost", job_id=job_id)
                    return
            except Exception:
                log.exception("job.heartbeat_failed", job_id=job_id)
