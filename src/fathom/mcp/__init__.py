"""fathom as an MCP server: the tools in :mod:`fathom.mcp.tools`, served over stdio
(``fathom mcp``, :mod:`fathom.mcp.stdio`) and streamable HTTP (``/mcp`` under ``fathom serve``,
:mod:`fathom.service.mcp`)."""

from fathom.mcp.server import create_server
from fathom.mcp.tools import TOOLS, ToolContext

__all__ = ["TOOLS", "ToolContext", "create_server"]
