"""The MCP server over the tool table: tool listing, argument checks, and errors as tool errors.

:func:`create_server` builds one low-level MCP server for either transport. The transport says
who is calling through ``context_for``, which receives the HTTP request (``None`` on stdio)
and returns the :class:`~fathom.mcp.tools.ToolContext` the tools run with.

A failed call is an MCP tool result with ``isError`` set and the text ``[code] message``, as the
MCP specification asks of tool errors. It has no structured content: a tool's output schema
describes its results, and clients (the MCP Inspector, the TypeScript SDK) check structured
content against it, so an error object there would be reported as a broken server instead of
the error. The machine-readable error, the REST API's shape ``{"code", "message",
"request_id"}`` (and ``retry_after``), is in the result's ``_meta`` under ``fathom/error``.
Codes are stable; messages never carry tracebacks, internals or document text.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import structlog
from mcp import types
from mcp.server.lowlevel import Server
from pydantic import ValidationError
from starlette.requests import Request

from fathom import __version__
from fathom.errors import BackendUnavailable, FathomError, LimitExceeded
from fathom.mcp.tools import TOOLS, Tool, ToolContext, tool_named

__all__ = ["ERROR_META", "INSTRUCTIONS", "ContextFactory", "create_server", "describe"]

log = structlog.get_logger(__name__)

ContextFactory = Callable[[Request | None], ToolContext]

# Where a tool error's machine-readable form goes in the result's `_meta`.
ERROR_META = "fathom/error"

INSTRUCTIONS = (
    "fathom searches the user's own documents and answers from them with citations. Use search "
    "to find passages, ask for a cited answer, get_document to read around a citation, "
    "list_documents to see what is stored, and ingest_text to add a document. Results only "
    "include documents the caller may read. When you use what a tool returned, cite it (title "
    "and source, page when given); when ask abstains, say the documents do not answer it."
)


def describe(tool: Tool[Any, Any]) -> types.Tool:
    """The MCP description of a tool: its JSON schemas and hints."""
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        inputSchema=tool.args.model_json_schema(),
        outputSchema=tool.result.model_json_schema(mode="serialization"),
        annotations=types.ToolAnnotations(
            title=tool.title,
            readOnlyHint=tool.read_only,
            destructiveHint=False,
            idempotentHint=tool.idempotent,
            openWorldHint=False,
        ),
    )


def _error(
    code: str, message: str, request_id: str, retry_after: float | None = None
) -> types.CallToolResult:
    error: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    text = f"[{code}] {message}"
    if retry_after is not None:
        error["retry_after"] = max(1, math.ceil(retry_after))
        text += f" (retry after {error['retry_after']} s)"
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        isError=True,
        _meta={ERROR_META: error},
    )


def _invalid_arguments(exc: ValidationError) -> str:
    # Where and what, never the input: it may hold document text.
    problems = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        # A location may name a key the caller sent (a filter's, say): clip each part.
        where = ".".join(str(part)[:64] for part in error.get("loc", ())) or "arguments"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid arguments"


async def call_tool(
    name: str, arguments: dict[str, Any], context: ToolContext, request_id: str
) -> types.CallToolResult:
    """Run one tool call to a result, successful or an MCP tool error."""
    tool = tool_named(name)
    if tool is None:
        known = ", ".join(t.name for t in TOOLS)
        return _error("tool.unknown", f"there is no tool {name!r}; the tools are {known}", request_id)
    try:
        args = tool.args.model_validate(arguments)
    except ValidationError as exc:
        return _error("request.invalid", _invalid_arguments(exc), request_id)
    started = time.perf_counter()
    outcome = "ok"
    try:
        result = await tool.run(context, args)
    except FathomError as exc:
        outcome = exc.code
        retry_after = exc.retry_after if isinstance(exc, LimitExceeded) else None
        if isinstance(exc, BackendUnavailable):
            from fathom.store.outage import RETRY_AFTER_SECONDS

            retry_after = RETRY_AFTER_SECONDS
        return _error(exc.code, exc.message, request_id, retry_after)
    except Exception as exc:
        # Imported here: it imports SQLAlchemy, which `fathom mcp` does not need to start.
        from fathom.store.outage import RETRY_AFTER_SECONDS, database_unavailable, is_unavailable

        if is_unavailable(exc):
            outcome = "backend.unavailable"
            unavailable = database_unavailable()
            return _error(unavailable.code, unavailable.message, request_id, RETRY_AFTER_SECONDS)
        outcome = "internal.error"
        log.exception("mcp.tool_failed", tool=name)
        return _error("internal.error", "the tool failed; the server log has the details", request_id)
    finally:
        log.info(
            "mcp.tool",
            tool=name,
            outcome=outcome,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=result.render())],
        structuredContent=result.model_dump(mode="json"),
        isError=False,
    )


def create_server(
    context_for: ContextFactory, *, on_list_tools: Callable[[], None] | None = None
) -> Server[Any, Request]:
    """An MCP server offering :data:`~fathom.mcp.tools.TOOLS`.

    Args:
        context_for: who calls, from the HTTP request of the call (``None`` on stdio). It may
            raise a :class:`~fathom.errors.FathomError`, which becomes the call's tool error.
        on_list_tools: called (after the reply is built) whenever a client lists the tools:
            ``fathom mcp`` starts opening its home then, once the client has connected.
    """
    server: Server[Any, Request] = Server("fathom", version=__version__, instructions=INSTRUCTIONS)
    descriptions = [describe(tool) for tool in TOOLS]

    @server.list_tools()  # type: ignore[no-untyped-call, untyped-decorator]
    async def list_tools() -> list[types.Tool]:
        if on_list_tools is not None:
            on_list_tools()
        return descriptions

    # Arguments are checked by the tools' own models, for messages in fathom's error shape.
    @server.call_tool(validate_input=False)  # type: ignore[untyped-decorator]
    async def handle_call(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        request_context = server.request_context
        request = request_context.request
        request_id = ""
        if request is not None:
            request_id = str(request.scope.get("state", {}).get("request_id", ""))
        request_id = request_id or str(request_context.request_id)
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                context = context_for(request)
            except FathomError as exc:
                return _error(exc.code, exc.message, request_id)
            return await call_tool(name, arguments, context, request_id)

    return server
