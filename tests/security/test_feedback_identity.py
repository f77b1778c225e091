"""Security item 12: feedback identity.

Keys without a user must not count as the same person (``None == None``): such a key may rate
only the answers given to that very key. And feedback ids must not be a counter shared by every
tenant, which would tell one tenant how much feedback the others give.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.security.conftest import Served, call_tool


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    served = serve(rate_limit_per_minute=0)
    admin = served.key(user="root", admin=True)
    served.upload(admin, text="# Parking\n\nBicycles are parked in the basement cage.\n", source="parking.md")
    return served


def _answer_id(served: Served, headers: dict[str, str]) -> str:
    response = served.client.post("/v1/ask", json={"query": "Where are bicycles parked?"}, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["answer_id"])


def _rate(served: Served, headers: dict[str, str], answer_id: str) -> tuple[int, dict[str, object]]:
    response = served.client.post(
        "/v1/feedback", json={"answer_id": answer_id, "rating": "up"}, headers=headers
    )
    return response.status_code, response.json()


def test_keys_without_a_user_rate_only_their_own_answers(served: Served):
    first = served.key(user=None)
    second = served.key(user=None)
    alice = served.key(user="alice")
    answer_id = _answer_id(served, first)

    status, body = _rate(served, second, answer_id)
    assert status == 404, "a key without a user rated an answer given to another key without a user"
    assert body["error"]["code"] == "answer.not_found"  # type: ignore[index]
    assert _rate(served, alice, answer_id)[0] == 404
    assert _rate(served, first, answer_id)[0] == 201


def test_an_mcp_answer_is_rated_by_the_key_that_received_it_and_no_other(served: Served):
    first = served.key(user=None)
    second = served.key(user=None)
    result = call_tool(served.client, first, "ask", {"question": "Where are bicycles parked?"})
    answer_id = result["structuredContent"]["answer_id"]
    assert _rate(served, second, answer_id)[0] == 404
    assert _rate(served, first, answer_id)[0] == 201


def test_feedback_ids_are_opaque_and_reveal_no_other_tenants_activity(served: Served):
    acme = served.key(tenant="acme", user="alice")
    globex = served.key(tenant="globex", user="dave")
    ids = []
    for headers in (acme, globex, acme):
        status, body = _rate(served, headers, _answer_id(served, headers))
        assert status == 201
        ids.append(body["feedback_id"])
    assert all(isinstance(i, str) and re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert len(set(ids)) == 3
