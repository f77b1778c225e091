"""The parser worker process: ``python -P -m fathom.ingest.sandbox_child FD``.

A worker is a fresh interpreter started by :class:`fathom.ingest.sandbox.ParserPool`, never a
multiprocessing child: those (spawn and forkserver alike) import the caller's ``__main__``
first, so a script without an ``if __name__ == "__main__":`` guard ran again in every worker
and every file failed with ``ingest.parser_crashed``. This module imports only the parsers.

FD is one end of a :func:`multiprocessing.Pipe`. The parent sends ``(memory_bytes, cpu_seconds,
options)``; the
worker sets its memory limit, answers ``"ready"``, then parses ``(data, name)`` jobs until it
receives ``None`` or the pipe closes, replying ``("ok", ParsedDocument)`` or
``("error", code, message)``.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

from fathom.errors import FathomError
from fathom.ingest.parsers import parse_bytes

__all__ = ["main", "serve"]

MEMORY_REPLY = ("error", "ingest.parser_memory", "parsing needed more memory than the limit allows")


def serve(conn: Connection) -> None:
    """Receive the memory and CPU limits and the parser options, then parse jobs until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    memory_bytes, cpu_seconds, options = conn.recv()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    memory = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (memory, hard))
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        except MemoryError:  # the file itself does not fit under the limit
            with contextlib.suppress(MemoryError, OSError):
                conn.send(MEMORY_REPLY)
            return
        if job is None:
            return
        data, name = job
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = int(usage.ru_utime + usage.ru_stime)
        _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
        # The soft limit sends SIGXCPU, whose default action ends the process.
        resource.setrlimit(resource.RLIMIT_CPU, (used + cpu_seconds + 1, cpu_hard))
        reply: tuple[Any, ...]
        try:
            reply = ("ok", parse_bytes(data, name, options))
        except FathomError as exc:
            reply = ("error", exc.code, exc.message)
        except MemoryError:
            reply = MEMORY_REPLY
        except RecursionError:
            reply = ("error", "ingest.parser_failed", "the file is nested too deeply to parse")
        except Exception as exc:  # a parser bug must fail this file only
            reply = ("error", "ingest.parser_failed", f"the parser failed ({type(exc).__name__})")
        try:
            conn.send(reply)
        except MemoryError:
            reply = MEMORY_REPLY
            conn.send(reply)
        if reply is MEMORY_REPLY:
            return  # start afresh rather than carry a fragmented heap


def main() -> None:
    """Serve the pipe whose file descriptor is the first argument."""
    conn = Connection(int(sys.argv[1]))
    with conn:
        serve(conn)


if __name__ == "__main__":
    main()
