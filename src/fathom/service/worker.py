"""Ingestion workers: threads in each serve process that take jobs from the store of record.

Jobs live in the database, so a worker that dies loses nothing: its lease runs out and a
worker in this or another process takes the job again. Workers sleep until a job is queued:
an in-process event wakes them in the embedded mode, a Redis channel across processes in the
shared mode, and a short poll catches anything a signal missed.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable

import redis
import structlog

from fathom.api import Fathom
from fathom.errors import FathomError
from fathom.store.jobs import ClaimedJob

__all__ = ["JobWorkers"]

log = structlog.get_logger(__name__)

_POLL_SECONDS = 1.0

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
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5) if redis_url else None
        self._pubsub: redis.client.PubSub | None = None
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def start(self) -> None:
        for index in range(self._count):
            thread = threading.Thread(
                target=self._run, args=(index,), name=f"fathom-job-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        if self._redis is not None and self._count:
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            self._pubsub.subscribe(**{self._channel: lambda _message: self._wake.set()})
            self._threads.append(self._pubsub.run_in_thread(sleep_time=_POLL_SECONDS, daemon=True))
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
            if isinstance(thread, redis.client.PubSubWorkerThread):
                thread.stop()
        for thread in self._threads:
            thread.join(timeout)
        if self._pubsub is not None:
            self._pubsub.close()
        if self._redis is not None:
            self._redis.close()

    def _run(self, index: int) -> None:
        worker = f"{self.name}:{index}"
        while not self._stop.is_set():
            try:
                job = self._fathom.jobs.claim(worker)
            except Exception:  # the store may be briefly unreachable; keep the thread alive
                log.exception("jobs.claim_failed")
                job = None
            if job is None:
                self._wake.wait(_POLL_SECONDS)
                self._wake.clear()
                continue
            self._process(job, worker)

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
        self._fathom.jobs.finish(job.job_id, worker, error_code=error_code, reason=reason)
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
