"""Fixtures for the MCP server: one seeded home, and official `mcp` clients over both transports.

The home holds two tenants' documents, ingested for real (files through the parsers, one
document through the job queue to give it an ACL) with the packaged embedding model. Clients
are opened once per session and kept open across tests; each runs in its own event loop thread
(an anyio blocking portal), so the tests themselves stay synchronous.

- stdio: `python -m fathom mcp --tenant T` spawned by ``stdio_client``; it acts as an admin
  of tenant T.
- http: a real `fathom serve` process, reached by ``streamable_http_client`` at ``/mcp`` with
  an API key of a principal (see ``IDENTITIES``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from fathom import Fathom
from fathom.domain import Principal
from fathom.embed import Embedder
from tests.service.server import ServerProcess

TIMEOUT = timedelta(seconds=240)

# Each document carries a marker word no other document has: a marker in a result proves that
# the document was read.
ACME_FILES = {
    "kettle.md": (
        "# Kitchen handbook\n\n"
        "## Descaling the kettle\n\n"
        "Descale the office kettle every four weeks with citric acid. Rinse it twice afterwards. "
        "The kettle log word is acmekettlemarker.\n\n"
        "## Coffee machine\n\n"
        "Facilities clean the coffee machine every Friday afternoon.\n"
    ),
    "travel.md": (
        "# Travel policy\n\n"
        "## Booking trains\n\n"
        "Book train tickets at least fourteen days ahead through the travel desk. "
        "The travel desk word is acmetravelmarker.\n\n"
        + "".join(
            f"## Region {n}\n\nTrips to region {n} need approval from the region {n} lead. " * 3 + "\n\n"
            for n in range(1, 30)
        )
    ),
}
ACME_ENG = (
    "# Database failover\n\n"
    "## Promote the replica\n\n"
    "Promote the standby replica with pg_promote, then repoint db.acme.internal to it. "
    "The failover word is acmeengmarker.\n"
)
GLOBEX_FILES = {
    "cafeteria.md": (
        "# Cafeteria\n\n"
        "## Menu rotation\n\n"
        "The cafeteria rotates its menu every Tuesday; the kettle there is descaled daily. "
        "The cafeteria word is globexcafemarker.\n"
    ),
}
ACME_MARKERS = ("acmekettlemarker", "acmetravelmarker", "acmeengmarker")
GLOBEX_MARKERS = ("globexcafemarker",)

# name: (tenant, user, groups, admin) of the HTTP keys; stdio serves a tenant as its admin.
IDENTITIES: dict[str, tuple[str, str | None, tuple[str, ...], bool]] = {
    "acme": ("acme", "alice", ("eng",), False),
    "acme-bob": ("acme", "bob", (), False),
    "globex": ("globex", "dave", (), False),
}
TENANT_OF = {"acme": "acme", "globex": "globex"}


@dataclass
class World:
    home: Path
    keys: dict[str, str]
    doc_ids: dict[str, str] = field(default_factory=dict)


def _ingest_folder(home: Path, embedder: Embedder, tenant: str, folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    with Fathom(home=home, embedder=embedder, tenant=tenant) as fathom:
        report = fathom.ingest([folder], progress=None)
        assert report.ok and report.count("added") == len(files), report.to_dict()


def _ingest_job(home: Path, embedder: Embedder, tenant: str, source: str, text: str, group: str) -> str:
    """Ingest through the job queue, as an upload is, to give the document an ACL."""
    with Fathom(home=home, embedder=embedder, tenant=tenant) as fathom:
        job, _ = fathom.submit_document(text.encode(), source=source, acl_groups=[group])
        claimed = fathom.jobs.claim("seed")
        assert claimed is not None and claimed.job_id == job.job_id
        outcome = fathom.run_job(claimed)
        fathom.jobs.finish(claimed.job_id, "seed", error_code=outcome.error_code, reason=outcome.message)
        assert outcome.status == "added", outcome
        return job.document_id


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> World:
    root = tmp_path_factory.mktemp("mcp")
    home = root / "home"
    _ingest_folder(home, embedder, "acme", root / "acme", ACME_FILES)
    _ingest_folder(home, embedder, "globex", root / "globex", GLOBEX_FILES)
    eng_id = _ingest_job(home, embedder, "acme", "runbooks/failover.md", ACME_ENG, "eng")
    keys: dict[str, str] = {}
    with Fathom(home=home, embedder=embedder) as fathom:
        for name, (tenant, user, groups, admin) in IDENTITIES.items():
            keys[name], _ = fathom.keys.create(tenant=tenant, user=user, groups=groups, admin=admin)
        doc_ids = {
            doc.source.rsplit("/", 1)[-1]: doc.doc_id
            for tenant in ("acme", "globex")
            for doc in fathom.documents(principal=Principal(tenant=tenant, admin=True))
        }
    assert doc_ids["failover.md"] == eng_id
    return World(home=home, keys=keys, doc_ids=doc_ids)


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")}
    return {**env, "FATHOM_HOME": str(home), **extra}


class McpClient:
    """A synchronous face on an official ``ClientSession`` running in a portal's event loop."""

    def __init__(self, portal: BlockingPortal, session: ClientSession) -> None:
        self.portal = portal
        self.session = session

    def tools(self) -> list[types.Tool]:
        return self.portal.call(self.session.list_tools).tools

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> types.CallToolResult:
        return self.portal.call(self.session.call_tool, name, arguments or {})

    def ok(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a tool that must succeed; its structured content."""
        result = self.call(name, arguments)
        assert not result.isError, result.content
        assert result.structuredContent is not None
        return result.structuredContent

    def error(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a tool that must fail; its error object (code, message, request_id)."""
        result = self.call(name, arguments)
        assert result.isError, result.content
        # Per the MCP spec: text content only, nothing that the tool's output schema would refuse.
        assert result.structuredContent is None and len(result.content) == 1
        assert result.meta is not None
        error = result.meta["fathom/error"]
        text = result.content[0]
        assert isinstance(text, types.TextContent)
        assert text.text.startswith(f"[{error['code']}] {error['message']}")
        assert "Traceback" not in text.text and 'File "' not in text.text
        return dict(error)


StreamOpener = Callable[[], AbstractAsyncContextManager[tuple[Any, ...]]]


@asynccontextmanager
async def _session(open_streams: StreamOpener) -> AsyncIterator[ClientSession]:
    async with open_streams() as streams, ClientSession(streams[0], streams[1], TIMEOUT) as session:
        await session.initialize()
        yield session


def open_client(stack: ExitStack, open_streams: StreamOpener) -> McpClient:
    portal = stack.enter_context(start_blocking_portal())
    session = stack.enter_context(portal.wrap_async_context_manager(_session(open_streams)))
    return McpClient(portal, session)


@dataclass
class Transports:
    """Clients by (transport, identity), opened on first use and closed at the end."""

    world: World
    stack: ExitStack
    root: Path
    clients: dict[tuple[str, str], McpClient] = field(default_factory=dict)
    server: ServerProcess | None = None

    def stderr_log(self, tenant: str) -> Path:
        return self.root / f"mcp-stdio-{tenant}.log"

    def client(self, transport: str, identity: str) -> McpClient:
        if (transport, identity) not in self.clients:
            opener = self._stdio(identity) if transport == "stdio" else self._http(identity)
            self.clients[transport, identity] = open_client(self.stack, opener)
        return self.clients[transport, identity]

    def _stdio(self, identity: str) -> StreamOpener:
        tenant = TENANT_OF[identity]
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "fathom", "mcp", "--tenant", tenant],
            env=server_env(self.world.home, FATHOM_LOG_LEVEL="INFO"),
        )
        errlog = self.stack.enter_context(self.stderr_log(tenant).open("w", encoding="utf-8"))
        return lambda: stdio_client(params, errlog=errlog)

    @property
    def url(self) -> str:
        if self.server is None:
            log = self.root / "serve.log"
            self.server = ServerProcess(self.world.home, {"FATHOM_LOG_LEVEL": "INFO"}, log=log)
            self.stack.callback(self.server.stop)
            self.server.wait_ready(timeout=240)
        return f"{self.server.url}/mcp"

    def _http(self, identity: str) -> StreamOpener:
        url = self.url
        headers = {"Authorization": f"Bearer {self.world.keys[identity]}"}

        @asynccontextmanager
        async def opener() -> AsyncIterator[tuple[Any, ...]]:
            async with (
                httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(240)) as http,
                streamable_http_client(url, http_client=http) as streams,
            ):
                yield streams

        return opener


@pytest.fixture(scope="session")
def transports(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Transports]:
    with ExitStack() as stack:
        yield Transports(world, stack, tmp_path_factory.mktemp("mcp-logs"))


def dumps(result: Any) -> str:
    return json.dumps(result, ensure_ascii=False)
