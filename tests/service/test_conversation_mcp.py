"""The MCP ask tool in a conversation: `conversation_id: "new"` starts one, follow-ups are made standalone."""

from __future__ import annotations

from collections.abc import Callable

from fathom.embed import Embedder
from tests.security.conftest import call_tool
from tests.service.conftest import Served

CLOUDNOVA = (
    "# CloudNova guide\n\n## Contact\n\nSupport Email: ops@cloudnova.ai\n\nEmergency Phone: +91 9876543244\n"
)
NEUROSTACK = (
    "# NeuroStack AI guide\n\n## Contact\n\n"
    "Support Email: ops@neurostack.ai\n\nEmergency Phone: +91 9876543277\n"
)


def test_ask_in_a_conversation_over_mcp(serve: Callable[..., Served], embedder: Embedder) -> None:
    served = serve(embedder=embedder)
    alice = served.key(tenant="acme", user="alice")
    served.upload(alice, text=CLOUDNOVA, source="cloudnova.md")
    served.upload(alice, text=NEUROSTACK, source="neurostack.md")
    first = call_tool(
        served.client,
        alice,
        "ask",
        {"question": "What is CloudNova's support email?", "conversation_id": "new"},
    )["structuredContent"]
    conversation_id = first["conversation_id"]
    assert conversation_id and "ops@cloudnova.ai" in first["answer"] and first["standalone_question"] is None
    second = call_tool(
        served.client,
        alice,
        "ask",
        {"question": "And its emergency phone?", "conversation_id": conversation_id},
    )
    content = second["structuredContent"]
    assert content["standalone_question"] == "CloudNova's emergency phone?"
    assert "9876543244" in content["answer"] and "9876543277" not in content["answer"]
    assert "(read as: CloudNova's emergency phone?)" in second["content"][0]["text"]
    # Another user cannot continue it.
    bob = served.key(tenant="acme", user="bob")
    refused = call_tool(served.client, bob, "ask", {"question": "And?", "conversation_id": conversation_id})
    assert refused["isError"] is True
    assert (
        served.client.get(f"/v1/conversations/{conversation_id}", headers=alice).json()["turns"][1]["n"] == 2
    )
