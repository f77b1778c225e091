"""``fathom mcp``: the MCP tools over stdio, for an assistant that runs fathom on its own machine.

The server acts as the local user, like the ``fathom`` command: an admin of one tenant of the
local home (``--tenant``, default the ``tenant`` setting), so it reads every document of that
tenant and nothing of any other. Standard output carries the protocol and nothing else: file
descriptor 1 is moved aside for it, and anything else that writes to stdout (a library's print,
a native library) lands on standard error with the logs.
"""

from __future__ import annotations

import io
import os
import sys
from typing import IO, Any

import anyio
import structlog
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from starlette.requests import Request

from fathom.api import Fathom
from fathom.config import Settings
from fathom.domain import Principal
from fathom.mcp.server import create_server
from fathom.mcp.tools import ToolContext
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


def run_stdio(settings: Settings) -> None:
    """Serve the MCP tools on stdin/stdout until the client closes stdin."""
    protocol_out = _protocol_stdout()
    fathom = Fathom(settings=settings)
    workers = JobWorkers(fathom, threads=1)
    principal = local_principal(settings)
    context = ToolContext(fathom=fathom, principal=principal, job_queued=workers.notify)
    server = create_server(lambda _request: context)
    try:
        _ = fathom.embedder  # load the model before the first call, not during it
        workers.start()
        log.info("mcp.stdio_started", tenant=principal.tenant, home=str(settings.home))
        anyio.run(_serve, server, protocol_out)
    finally:
        workers.stop()
        fathom.close()
        protocol_out.close()


async def _serve(server: Server[Any, Request], protocol_out: IO[bytes]) -> None:
    stdin = anyio.wrap_file(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"))
    stdout = anyio.wrap_file(io.TextIOWrapper(protocol_out, encoding="utf-8", write_through=True))
    async with stdio_server(stdin=stdin, stdout=stdout) as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
