"""Parsers run in worker processes with CPU-time, wall-time and memory limits.

A hostile or simply unlucky file can make a parser spin, allocate without end,
or crash the interpreter. Each worker process sets ``RLIMIT_AS`` (memory) once
and a fresh ``RLIMIT_CPU`` budget before every file; the parent kills a worker
that runs past the wall-time limit, counted as the parser's own time: the time the worker
waited for a free CPU (other work on every core) does not count. Whatever happens, only that file fails, with
a stable code, and a new worker takes the dead one's place.

    ingest.parser_timeout   CPU or wall time ran out
    ingest.parser_memory    the memory limit was reached
    ingest.parser_crashed   the worker died (a crash in native code)
    ingest.parser_failed    the parser raised an unexpected error
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import structlog

from fathom.errors import IngestError
from fathom.ingest.document import ParsedDocument
from fathom.ingest.parsers import ParseOptions

__all__ = ["ParseJob", "ParseLimits", "ParseResult", "ParserPool"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Per-file limits of a parser worker."""

    cpu_seconds: int = 30
    wall_seconds: float = 60.0
    memory_bytes: int = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParseJob:
    """One file to parse; ``key`` comes back with its result."""

    key: Any
    data: bytes
    name: str


@dataclass(frozen=True, slots=True)
class ParseResult:
    """A parsed document, or the error that failed the file."""

    key: Any
    parsed: ParsedDocument | None
    error: IngestError | None


_STARTUP_SECONDS = 30.0


class _ChildProcess:
    """A parser worker: a fresh interpreter running :mod:`fathom.ingest.sandbox_child`.

    Not a multiprocessing child, which would import the caller's ``__main__`` (a script without
    a main guard then ran again in every worker). ``-P`` keeps the current folder off
    ``sys.path`` (a ``json.py`` there must not shadow the standard library); the folder this
    fathom was imported from goes first on ``PYTHONPATH``, so the worker runs the same code.
    Its own process group keeps a Ctrl-C in the terminal away from it: the parent stops it.
    """

    def __init__(self, fd: int) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self._popen = subprocess.Popen(
            [sys.executable, "-P", "-m", "fathom.ingest.sandbox_child", str(fd)],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            env=env,
            process_group=0,
        )
        self.pid: int = self._popen.pid

    @property
    def exitcode(self) -> int | None:
        """The exit status (minus the signal number when killed by one), None while running."""
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    def kill(self) -> None:
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.kill()


class _Worker:
    def __init__(self, limits: ParseLimits, options: ParseOptions) -> None:
        self.conn, child = multiprocessing.Pipe()
        try:
            self.process = _ChildProcess(child.fileno())
        finally:
            child.close()
        self.conn.send((limits.memory_bytes, limits.cpu_seconds, options))
        self.job: ParseJob | None = None
        self._started = 0.0
        self._on_cpu = 0.0
        self._waited = 0.0
        # Start-up (an interpreter importing the parsers) does not count against the first file's time.
        if self.conn.poll(_STARTUP_SECONDS):
            with contextlib.suppress(EOFError, OSError):
                self.conn.recv()

    def begin(self, job: ParseJob) -> None:
        self.job = job
        self._started = time.monotonic()
        self._on_cpu, self._waited = _schedstat(self.process.pid)

    def parser_seconds(self) -> float:
        """Seconds the current file has taken, less the time the worker waited for a free CPU:
        a parser starved by other work (the caller embedding on every core) is not slow.

        Linux adds a wait to the process's run-queue total only once the wait ends, so while the
        worker is runnable (running, or waiting for a core) its own time is its CPU time; while
        it sleeps (blocked, or done) it is the wall time less every wait, which is then complete.
        Without /proc this is the plain wall-clock time.
        """
        elapsed = time.monotonic() - self._started
        on_cpu, waited = _schedstat(self.process.pid)
        if on_cpu < 0:
            return elapsed
        if _runnable(self.process.pid):
            return on_cpu - self._on_cpu
        return elapsed - (waited - self._waited)

    def stop(self, *, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            with contextlib.suppress(OSError):
                self.conn.send(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _schedstat(pid: int | None) -> tuple[float, float]:
    """Seconds process ``pid`` has run on a CPU and waited on a run queue (Linux schedstat);
    (-1, -1) where the kernel does not say."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as handle:
            on_cpu, waited, *_ = handle.read().split()
        return int(on_cpu) / 1e9, int(waited) / 1e9
    except (OSError, ValueError):
        return -1.0, -1.0


def _runnable(pid: int | None) -> bool:
    """Whether process ``pid`` is running or waiting for a CPU (state R)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[0] == "R"
    except (OSError, IndexError):
        return False


def _death_error(exitcode: int | None) -> IngestError:
    if exitcode in (-signal.SIGXCPU, -signal.SIGKILL):
        return IngestError("parsing took longer than the time limit", code="ingest.parser_timeout")
    return IngestError("the parser crashed on this file", code="ingest.parser_crashed")


class ParserPool:
    """A pool of parser worker processes; use as a context manager or call :meth:`close`.

    Args:
        workers: worker processes (at least 1).
        limits: per-file CPU, wall-time and memory limits.
        options: parser options (JSON fields, archive caps).
    """

    def __init__(self, workers: int, limits: ParseLimits, options: ParseOptions) -> None:
        self._size = max(1, workers)
        self._limits = limits
        self._options = options
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker."""
        with self._lock:
            for worker in self._workers:
                worker.stop()
            self._workers.clear()

    def parse(self, data: bytes, name: str) -> ParsedDocument:
        """Parse one file in a worker.

        Raises:
            IngestError: the file failed (its own code) or a limit was hit.
        """
        result = next(iter(self.map([ParseJob(None, data, name)])))
        if result.error is not None:
            raise result.error
        assert result.parsed is not None
        return result.parsed

    def map(self, jobs: Iterable[ParseJob], *, buffer: int = 8) -> Iterator[ParseResult]:
        """Parse ``jobs`` in the workers; results come back in completion order.

        Dispatch runs on a background thread, so workers keep parsing while the caller
        works on earlier results (embedding them, for instance); at most ``buffer``
        finished results wait for the caller.
        """
        results: queue.Queue[ParseResult | BaseException | None] = queue.Queue(maxsize=buffer)
        stop = threading.Event()

        def run() -> None:
            try:
                with self._lock:
                    self._dispatch(iter(jobs), results, stop)
                results.put(None)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                results.put(exc)

        thread = threading.Thread(target=run, name="fathom-parse-dispatch", daemon=True)
        thread.start()
        try:
            while True:
                item = results.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    results.get(timeout=0.05)
            thread.join()

    def _dispatch(
        self,
        jobs: Iterator[ParseJob],
        results: queue.Queue[ParseResult | BaseException | None],
        stop: threading.Event,
    ) -> None:
        try:
            self._dispatch_until_done(jobs, results, stop)
        finally:
            # A consumer that stopped early leaves files in flight: their results must not
            # reach the next map(), so those workers are retired.
            for worker in [w for w in self._workers if w.job is not None]:
                self._replace(worker, kill=True)

    def _dispatch_until_done(
        self,
        jobs: Iterator[ParseJob],
        results: queue.Queue[ParseResult | BaseException | None],
        stop: threading.Event,
    ) -> None:
        exhausted = False
        while not stop.is_set():
            busy = [w for w in self._workers if w.job is not None]
            while not exhausted and len(busy) < self._size:
                job = next(jobs, None)
                if job is None:
                    exhausted = True
                    break
                worker = self._idle_worker()
                worker.begin(job)
                try:
                    worker.conn.send((job.data, job.name))
                except (OSError, ValueError):
                    self._replace(worker, kill=True)
                    self._put(results, stop, ParseResult(job.key, None, _death_error(None)))
                    continue
                busy.append(worker)
            if not busy:
                return
            wall = self._limits.wall_seconds
            timeout = max(0.0, min(wall - w.parser_seconds() for w in busy))
            ready = wait([w.conn for w in busy], timeout=min(timeout, 0.5))
            for worker in busy:
                job = worker.job
                assert job is not None
                # Handing a result over can block while the caller is busy, so a reply that
                # arrived meanwhile is taken before any clock is looked at.
                if worker.conn in ready or worker.conn.poll():
                    self._put(results, stop, self._receive(worker, job))
                elif worker.parser_seconds() >= wall:
                    log.warning("ingest.parser_killed", reason="wall_time")
                    self._replace(worker, kill=True)
                    error = IngestError(
                        "parsing took longer than the time limit", code="ingest.parser_timeout"
                    )
                    self._put(results, stop, ParseResult(job.key, None, error))

    def _receive(self, worker: _Worker, job: ParseJob) -> ParseResult:
        try:
            reply = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            exitcode = worker.process.exitcode
            log.warning("ingest.parser_died", exitcode=exitcode)
            self._replace(worker, kill=True)
            return ParseResult(job.key, None, _death_error(exitcode))
        worker.job = None
        if reply[0] == "ok":
            return ParseResult(job.key, reply[1], None)
        if reply[1] == "ingest.parser_memory":
            self._replace(worker, kill=False)
        return ParseResult(job.key, None, IngestError(reply[2], code=reply[1]))

    @staticmethod
    def _put(
        results: queue.Queue[ParseResult | BaseException | None], stop: threading.Event, item: ParseResult
    ) -> None:
        while not stop.is_set():
            try:
                results.put(item, timeout=0.1)
            except queue.Full:
                continue
            return

    def _idle_worker(self) -> _Worker:
        for worker in self._workers:
            if worker.job is None and worker.process.is_alive():
                return worker
        for worker in [w for w in self._workers if w.job is None]:
            self._workers.remove(worker)
            worker.stop(kill=True)
        worker = _Worker(self._limits, self._options)
        self._workers.append(worker)
        return worker

    def _replace(self, worker: _Worker, *, kill: bool) -> None:
        """Retire a worker; the next job starts a fresh one."""
        if worker in self._workers:
            self._workers.remove(worker)
        worker.stop(kill=kill)
        worker.job = None


def default_workers() -> int:
    """Parser workers when none are configured: the CPU count, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))
