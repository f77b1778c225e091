"""Parser workers: a file that runs too long, eats memory or crashes its worker fails alone."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fathom.ingest.parsers import ParseOptions
from fathom.ingest.sandbox import ParseJob, ParseLimits, ParserPool
from tests.files import make_pdf

pytestmark = pytest.mark.integration

GOOD = b"# Tides\n\nHigh tide is at noon today."


def _results(pool: ParserPool, jobs: list[ParseJob]) -> dict[str, tuple[str | None, str]]:
    out = {}
    for result in pool.map(jobs):
        code = result.error.code if result.error else None
        out[result.key] = (code, result.parsed.text if result.parsed else "")
    return out


def test_wall_time_limit_fails_only_the_slow_file(tmp_path: Path):
    # About 2.5 s of text extraction on an idle machine (more on a loaded one) against a
    # 0.5 s limit; the small file after it takes milliseconds, so the outcome holds either way.
    pages = [f"Page {i} of the long report.\n" + "\n".join(["word " * 12] * 30) for i in range(1000)]
    slow = make_pdf(tmp_path / "slow.pdf", pages).read_bytes()
    with ParserPool(1, ParseLimits(wall_seconds=0.5), ParseOptions()) as pool:
        results = _results(pool, [ParseJob("slow", slow, "slow.pdf"), ParseJob("good", GOOD, "good.md")])
    assert results["slow"][0] == "ingest.parser_timeout"
    assert results["good"] == (None, "# Tides\n\nHigh tide is at noon today.")


def test_memory_limit_fails_only_the_greedy_file():
    # 96 MB of non-ASCII text needs several copies of itself while decoding and cleaning. (48 MB
    # under 384 MB stopped failing once the worker no longer imported the whole library.)
    greedy = ("Ωμέγα " * 10_000_000).encode()
    with ParserPool(1, ParseLimits(memory_bytes=256 * 1024 * 1024), ParseOptions()) as pool:
        results = _results(pool, [ParseJob("greedy", greedy, "big.txt"), ParseJob("good", GOOD, "good.md")])
    assert results["greedy"][0] == "ingest.parser_memory"
    assert results["good"][0] is None


def test_a_worker_crash_fails_only_its_file(tmp_path: Path):
    big = make_pdf(tmp_path / "big.pdf", [f"Section {i}: " + "words " * 60 for i in range(150)]).read_bytes()
    with ParserPool(1, ParseLimits(), ParseOptions()) as pool:
        stream = pool.map([ParseJob("big", big, "big.pdf"), ParseJob("good", GOOD, "good.md")])

        def crash_worker() -> None:
            # Simulates a segfault in native parser code while the big file is parsed.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                busy = [w for w in pool._workers if w.job is not None and w.job.key == "big"]
                if busy and busy[0].process.pid:
                    time.sleep(0.05)
                    os.kill(busy[0].process.pid, signal.SIGSEGV)
                    return
                time.sleep(0.005)

        killer = threading.Thread(target=crash_worker)
        killer.start()
        results = {r.key: r for r in stream}
        killer.join()
    assert results["big"].error is not None and results["big"].error.code == "ingest.parser_crashed"
    assert results["good"].parsed is not None


def test_cpu_limit_is_set_per_file_in_the_worker():
    with ParserPool(1, ParseLimits(cpu_seconds=7), ParseOptions()) as pool:
        assert pool.parse(GOOD, "a.md").text.startswith("# Tides")
        worker = pool._workers[0]
        with open(f"/proc/{worker.process.pid}/limits", encoding="ascii") as limits:
            rows = {line[:26].strip(): line[26:].split() for line in limits}
        assert int(rows["Max cpu time"][0]) <= 8
        assert int(rows["Max address space"][0]) == ParseLimits().memory_bytes


def test_a_consumer_that_stops_early_does_not_leak_results_into_the_next_map(tmp_path: Path):
    big = make_pdf(tmp_path / "big.pdf", [f"Section {i}: " + "words " * 60 for i in range(100)]).read_bytes()
    with ParserPool(2, ParseLimits(), ParseOptions()) as pool:
        stream = pool.map([ParseJob("first", GOOD, "a.md"), ParseJob("big", big, "big.pdf")])
        next(stream)
        stream.close()  # the caller gives up while the big file may still be parsing
        keys = [r.key for r in pool.map([ParseJob("next", GOOD, "b.md")])]
    assert keys == ["next"]


def test_a_busy_caller_does_not_make_finished_files_time_out():
    """A consumer busy elsewhere (embedding) for longer than the wall limit held the dispatcher
    in a full result queue; on its return it timed out workers whose replies were waiting."""
    small = [
        ParseJob(f"f{i}", b"# Note %d\n\n" % i + b"Plain words. " * (2000 * (i % 2)), f"f{i}.md")
        for i in range(6)
    ]
    outcomes = {}
    with ParserPool(2, ParseLimits(wall_seconds=0.5), ParseOptions()) as pool:
        for result in pool.map(small, buffer=1):
            outcomes[result.key] = result.error.code if result.error else None
            time.sleep(1.0)  # the caller embeds the previous file meanwhile
    assert outcomes == {f"f{i}": None for i in range(6)}


def _hog(stop: float, cpu: int, running: Any) -> None:
    os.sched_setaffinity(0, {cpu})
    running.release()
    while time.monotonic() < stop:
        pass


def test_a_parser_starved_of_cpu_by_other_work_is_not_timed_out():
    """Small files failed with ingest.parser_timeout while the main process kept the cores busy:
    the deadline counted time the parser spent waiting for a CPU. It counts the parser's own time."""
    import multiprocessing

    # About 6 ms of parsing; the worker shares one core, at the lowest priority, with two busy
    # loops, so it gets about 1% of it: some 0.6 s of wall time against a 0.2 s limit.
    text = b"# Starved\n\n" + b"A short paragraph of ordinary prose about tides and harbours. " * 2000
    cpu = min(os.sched_getaffinity(0))
    with ParserPool(1, ParseLimits(wall_seconds=0.2), ParseOptions()) as pool:
        pool.parse(GOOD, "warm.md")  # the worker exists and has imported its parsers
        pid = pool._workers[0].process.pid
        assert pid is not None
        os.sched_setaffinity(pid, {cpu})
        os.setpriority(os.PRIO_PROCESS, pid, 19)
        context = multiprocessing.get_context("fork")
        running = context.Semaphore(0)
        hogs = [context.Process(target=_hog, args=(time.monotonic() + 3.0, cpu, running)) for _ in range(2)]
        for hog in hogs:
            hog.start()
        for _ in hogs:  # every busy loop spins before the file is sent
            running.acquire()
        try:
            started = time.monotonic()
            parsed = pool.parse(text, "starved.md")
            waited = time.monotonic() - started
        finally:
            for hog in hogs:
                hog.join()
    assert parsed.text.startswith("# Starved")
    assert waited > 0.2  # it was starved past the limit, and still not timed out
