"""The MCP tools through the official `mcp` client, over stdio and streamable HTTP alike.

Every test runs once per transport against the same seeded home: `fathom mcp --tenant T` as an
admin of T, and `fathom serve` at /mcp with an API key (see conftest ``IDENTITIES``).
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp import types

from tests.mcp.conftest import ACME_MARKERS, GLOBEX_MARKERS, McpClient, Transports, World, dumps

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOOL_NAMES = {"search", "ask", "ingest_text", "list_documents", "get_document"}


@pytest.fixture(params=["stdio", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def acme(transports: Transports, transport: str) -> McpClient:
    return transports.client(transport, "acme")


@pytest.fixture
def globex(transports: Transports, transport: str) -> McpClient:
    return transports.client(transport, "globex")


def _text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def _document_slice(client: McpClient, doc_id: str, start: int, end: int) -> str:
    part = client.ok("get_document", {"document_id": doc_id, "offset": start, "max_chars": end - start})
    return str(part["text"])


def test_tools_are_listed_with_schemas_descriptions_and_hints(acme: McpClient):
    tools = {tool.name: tool for tool in acme.tools()}
    assert set(tools) == TOOL_NAMES
    for name, tool in tools.items():
        assert tool.description and len(tool.description) > 150, name
        schema = tool.inputSchema
        assert schema["type"] == "object" and schema["additionalProperties"] is False, name
        for prop, spec in schema["properties"].items():
            assert spec.get("description"), f"{name}.{prop} has no description"
        assert tool.outputSchema is not None and tool.outputSchema["type"] == "object", name
        assert tool.annotations is not None
        assert tool.annotations.readOnlyHint is (name != "ingest_text"), name
    assert tools["search"].inputSchema["required"] == ["query"]
    assert tools["search"].inputSchema["properties"]["k"]["maximum"] == 50
    assert tools["ask"].inputSchema["required"] == ["question"]
    assert tools["ingest_text"].inputSchema["required"] == ["text"]
    assert tools["get_document"].inputSchema["required"] == ["document_id"]
    hit_fields = set(tools["search"].outputSchema["$defs"]["SearchHit"]["properties"])  # type: ignore[index]
    assert hit_fields >= {"doc_id", "chunk_id", "title", "source", "page", "heading_path", "quote"}


def test_search_returns_cited_hits(acme: McpClient, world: World):
    result = acme.call("search", {"query": "How often is the office kettle descaled?", "k": 3})
    assert not result.isError
    hits = result.structuredContent["hits"]  # type: ignore[index]
    assert 1 <= len(hits) <= 3
    top = hits[0]
    assert top["n"] == 1
    assert top["doc_id"] == world.doc_ids["kettle.md"]
    assert top["title"] == "Kitchen handbook"
    assert "Descaling the kettle" in top["heading_path"]
    assert "every four weeks" in top["quote"]
    assert isinstance(top["chunk_id"], int) and top["page"] is None
    # The citation points at the exact characters of the document.
    assert _document_slice(acme, top["doc_id"], top["start"], top["end"]) == top["quote"]
    text = _text(result)
    assert "Kitchen handbook" in text and top["doc_id"] in text and "every four weeks" in text

    filtered = acme.ok("search", {"query": "kettle", "filters": {"filename": "travel.md"}})
    assert filtered["hits"]
    assert {hit["doc_id"] for hit in filtered["hits"]} == {world.doc_ids["travel.md"]}


def test_ask_answers_with_citations(acme: McpClient, world: World):
    result = acme.call("ask", {"question": "How often should the office kettle be descaled?"})
    assert not result.isError
    answer: dict[str, Any] = result.structuredContent  # type: ignore[assignment]
    assert answer["abstained"] is False
    assert answer["model"] == "extractive"
    assert "four weeks" in answer["answer"] and "[1]" in answer["answer"]
    assert answer["answer_id"]
    first = answer["citations"][0]
    assert first["n"] == 1 and first["doc_id"] == world.doc_ids["kettle.md"]
    assert first["title"] == "Kitchen handbook" and "Descaling the kettle" in first["heading_path"]
    assert "four weeks" in first["quote"]
    assert _document_slice(acme, first["doc_id"], first["start"], first["end"]) == first["quote"]
    text = _text(result)
    assert "four weeks" in text and "Sources:" in text and "[1] Kitchen handbook" in text


def test_ingest_text_then_search_finds_it(acme: McpClient, globex: McpClient, transport: str):
    marker = f"bicyclecage{transport}marker"
    body = (
        "# Parking rules\n\n## Bicycles\n\n"
        f"Bicycles are parked in the locked basement cage; the cage word is {marker}.\n"
    )
    arguments = {"text": body, "source": f"notes/parking-{transport}.md", "metadata": {"team": "facilities"}}
    stored = acme.ok("ingest_text", arguments)
    assert stored["status"] == "succeeded"
    assert stored["title"] == "Parking rules" and stored["chunks"] >= 1
    question = {"query": "Where are bicycles parked?", "filters": {"team": "facilities"}}
    hits = acme.ok("search", question)["hits"]
    assert hits and hits[0]["doc_id"] == stored["document_id"]
    assert marker in hits[0]["quote"]
    answer = acme.ok("ask", {"question": "Where are bicycles parked?"})
    assert "basement cage" in answer["answer"]
    assert stored["document_id"] in {c["doc_id"] for c in answer["citations"]}

    # The same text and source again is the same document.
    again = acme.ok("ingest_text", arguments)
    assert again["document_id"] == stored["document_id"] and again["status"] == "succeeded"
    # The other tenant never sees it.
    foreign = globex.ok("search", {"query": f"bicycles basement cage {marker}"})["hits"]
    assert stored["document_id"] not in {hit["doc_id"] for hit in foreign}
    assert marker not in dumps(foreign)
    hidden = globex.error("get_document", {"document_id": stored["document_id"]})
    assert hidden["code"] == "document.not_found"


def test_list_and_get_documents(acme: McpClient, world: World):
    first = acme.ok("list_documents", {"limit": 2})
    assert len(first["documents"]) == 2 and first["next_offset"] == 2
    assert first["total"] >= 3
    listed = list(first["documents"])
    offset = first["next_offset"]
    while offset is not None:
        page = acme.ok("list_documents", {"limit": 2, "offset": offset})
        listed += page["documents"]
        offset = page["next_offset"]
    assert len(listed) == first["total"]
    sources = [d["source"] for d in listed]
    assert sources == sorted(sources)
    ids = {d["doc_id"] for d in listed}
    assert {world.doc_ids[name] for name in ("kettle.md", "travel.md", "failover.md")} <= ids
    assert world.doc_ids["cafeteria.md"] not in ids
    runbooks = acme.ok("list_documents", {"source_prefix": "runbooks/"})
    assert [d["doc_id"] for d in runbooks["documents"]] == [world.doc_ids["failover.md"]]

    travel = world.doc_ids["travel.md"]
    head = acme.ok("get_document", {"document_id": travel, "max_chars": 500})
    assert head["document"]["title"] == "Travel policy"
    assert head["document"]["mime_type"] == "text/markdown"
    assert head["acl"] == {"users": [], "groups": []}
    assert len(head["text"]) == 500 and head["offset"] == 0 and head["next_offset"] == 500
    assert head["total_chars"] > 2000
    rest = acme.ok("get_document", {"document_id": travel, "offset": 500, "max_chars": 50_000})
    assert rest["next_offset"] is None
    assert len(head["text"]) + len(rest["text"]) == head["total_chars"]
    assert head["text"].startswith("Travel policy") or "Travel policy" in head["text"]
    assert "Region 29" in rest["text"]
    restricted = acme.ok("get_document", {"document_id": world.doc_ids["failover.md"]})
    assert restricted["acl"] == {"users": [], "groups": ["eng"]}


@pytest.mark.parametrize(
    ("tool", "arguments", "code", "says"),
    [
        ("search", {}, "request.invalid", "query: Field required"),
        ("search", {"query": "kettle", "k": 0}, "request.invalid", "k: Input should be greater than"),
        ("search", {"query": "kettle", "top": 3}, "request.invalid", "top: Extra inputs are not permitted"),
        ("search", {"query": "   "}, "query.empty", "empty"),
        ("search", {"query": "kettle " * 400}, "query.too_long", "2000 characters"),
        ("ask", {"question": "kettle", "k": "many"}, "request.invalid", "k: Input should be a valid integer"),
        ("ingest_text", {"text": ""}, "request.invalid", "text: String should have at least 1 character"),
        ("ingest_text", {"text": "x", "wait_seconds": 9999}, "request.invalid", "wait_seconds"),
        ("get_document", {"document_id": "0" * 32}, "document.not_found", "no document"),
        ("list_documents", {"limit": 100_000}, "request.invalid", "limit: Input should be less than"),
        ("delete_everything", {}, "tool.unknown", "the tools are search, ask"),
    ],
)
def test_bad_arguments_are_clear_tool_errors(
    acme: McpClient, tool: str, arguments: dict[str, Any], code: str, says: str
):
    error = acme.error(tool, arguments)
    assert error["code"] == code
    assert says in error["message"]
    assert error["request_id"]


def _foreign_ids(world: World, names: tuple[str, ...]) -> set[str]:
    return {world.doc_ids[name] for name in names}


@pytest.mark.parametrize("reader", ["acme", "globex"])
def test_tenant_isolation_through_every_tool(
    transports: Transports, transport: str, world: World, reader: str
):
    client = transports.client(transport, reader)
    if reader == "acme":
        foreign_markers, foreign = GLOBEX_MARKERS, _foreign_ids(world, ("cafeteria.md",))
    else:
        acme_documents = ("kettle.md", "travel.md", "failover.md")
        foreign_markers, foreign = ACME_MARKERS, _foreign_ids(world, acme_documents)
    questions = [
        "How often is the kettle descaled?",
        "When does the cafeteria rotate its menu?",
        "How do we promote the replica in a database failover?",
        "How early must train tickets be booked?",
        " ".join(ACME_MARKERS + GLOBEX_MARKERS),
    ]
    seen: list[str] = []
    for question in questions:
        found = client.ok("search", {"query": question, "k": 50})
        assert not {hit["doc_id"] for hit in found["hits"]} & foreign
        answer = client.ok("ask", {"question": question, "k": 50})
        assert not {c["doc_id"] for c in answer["citations"]} & foreign
        # The question itself may name a marker; only what came back counts.
        seen += [dumps(found["hits"]), dumps(answer)]
    listing = client.ok("list_documents", {"limit": 500})
    assert listing["documents"] and not {d["doc_id"] for d in listing["documents"]} & foreign
    seen.append(dumps(listing))
    for doc_id in foreign:
        assert client.error("get_document", {"document_id": doc_id})["code"] == "document.not_found"
    everything = "\n".join(seen)
    for marker in foreign_markers:
        assert marker not in everything
    # ... while its own documents are there.
    own = GLOBEX_MARKERS if reader == "globex" else ACME_MARKERS
    assert all(marker in everything for marker in own)
