"""``fathom mcp``: the MCP tools over stdio, for an assistant that runs fathom on its own machine.

The server acts as the local user, like the ``fathom`` command: an admin of one tenant of the
local home (``--tenant``, default the ``tenant`` setting), so it reads every document of that
tenant and nothing of any other. Standard output carries the protocol and nothing else: file
descriptor 1 is moved aside for it, and anything else that writes to stdout (a library's print,
a native library) lands on standard error with the logs.

It answers ``initialize`` and ``tools/list`` at once: the store and indexes open on a thread
once the client lists the tools (or at its first call), and the embedding model loads on the
first call that needs it. Clients give a server a few seconds to connect, and loading the model
alone takes longer on a busy machine; opening the home earlier would compete with the reply for
the interpreter.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from typing import IO, TYPE_CHECKING, Any

import anyio
import structlog
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from fathom.config import Settings
from fathom.domain import Principal
from fathom.errors import BackendUnavailable, FathomError
from fathom.mcp.server import create_server
from fathom.mcp.tools import ToolContext

if TYPE_CHECKING:
    from starlette.requests import Request

    from fathom.api import Fathom
    from fathom.service.worker import JobWorkers

__all__ = ["local_principal", "run_stdio"]

log = structlog.get_logger(__name__)


def local_principal(settings: Settings) -> Principal:
    """Who ``fathom mcp`` acts as: the local user, an admin of the configured tenant."""
    return Principal(tenant=settings.tenant, user=None, admin=True)


def _protocol_stdout() -> IO[bytes]:
    """A private handle on the real stdout for the protocol; fd 1 then points at stderr."""
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


class _LocalFathom:
    """The local home, opened on a thread while the protocol starts; tool calls wait for it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ready = threading.Event()
        self._fathom: Fathom | None = None
        self._workers: JobWorkers | None = None
        self._context: ToolContext | None = None
        self._error: FathomError | None = None
        self._thread = threading.Thread(target=self._open, name="fathom-open", daemon=True)
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        """Start opening the home (once; later calls do nothing)."""
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()

    def _open(self) -> None:
        try:
            # Imported here: the store, the indexes and the job workers cost seconds to import.
            from fathom.api import Fathom
            from fathom.service.worker import JobWorkers

            self._fathom = Fathom(settings=self._settings)
            self._workers = JobWorkers(self._fathom, threads=1)
            self._workers.start()
            principal = local_principal(self._settings)
            self._context = ToolContext(
                fathom=self._fathom, principal=principal, job_queued=self._workers.notify
            )
            log.info("mcp.stdio_ready", tenant=principal.tenant, home=str(self._settings.home))
        except FathomError as exc:
            self._error = exc
            log.warning("mcp.open_failed", code=exc.code)
        except Exception:
            self._error = BackendUnavailable(
                "fathom could not open its home; see its log", code="mcp.open_failed"
            )
            log.exception("mcp.open_failed")
        finally:
            self._ready.set()

    def context(self, _request: Request | None) -> ToolContext:
        """The tools' context once the home is open (a failure to open is each call's error)."""
        self.start()
        self._ready.wait()
        if self._context is None:
            raise self._error or BackendUnavailable("fathom is not open", code="mcp.open_failed")
        return self._context

    def close(self) -> None:
        if not self._started:
            return
        self._ready.wait()
        if self._workers is not None:
            self._workers.stop()
        if self._fathom is not None:
            self._fathom.close()


def run_stdio(settings: Settings) -> None:
    """Serve the MCP tools on stdin/stdout until the client closes stdin."""
    protocol_out = _protocol_stdout()
    local = _LocalFathom(settings)
    server = create_server(local.context, on_list_tools=local.start)
    try:
        log.info("mcp.stdio_started", tenant=settings.tenant, home=str(settings.home))
        anyio.run(_serve, server, protocol_out)
    finally:
        local.close()
        protocol_out.close()


async def _serve(server: Server[Any, Request], protocol_out: IO[bytes]) -> None:
    stdin = anyio.wrap_file(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"))
    stdout = anyio.wrap_file(io.TextIOWrapper(protocol_out, encoding="utf-8", write_through=True))
    async with stdio_server(stdin=stdin, stdout=stdout) as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
