"""Security item 5: near-duplicate links must not reveal documents their viewer may not read.

An upload is compared only with documents its uploader may read, so guessing a hidden
document's text never yields its id in ``metadata.near_duplicate_of``; and a reader of a document
is shown its ``near_duplicate_of`` link only when it may read the document linked to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.security.conftest import Served

SECRET = (
    "# Board minutes\n\n"
    "The board approved the acquisition of Globex for 3.2 billion euros, to close in the second quarter. "
    "Staff will be told on the first of June; until then only the executive team may know. "
    "The code name of the deal is Harbour Light and the data room opens on the tenth of May.\n"
)
PUBLIC = (
    "# Office moves\n\n"
    "The support team moves to the third floor in March. Desks are assigned by the facilities desk, "
    "and the old rooms on the second floor become meeting rooms. Parking stays as it is.\n"
)


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    return serve(rate_limit_per_minute=0)


def _document(served: Served, headers: dict[str, str], doc_id: str) -> Any:
    response = served.client.get(f"/v1/documents/{doc_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response


def test_guessing_a_hidden_documents_text_does_not_reveal_its_id(served: Served):
    admin = served.key(user="root", admin=True)
    bob = served.key(user="bob")
    secret_id = served.upload(admin, text=SECRET, source="board/minutes.md", acl={"users": ["ceo"]})[
        "document_id"
    ]
    guess = served.upload(bob, text=SECRET, source="guess.md")
    job = served.client.get(f"/v1/jobs/{guess['job_id']}", headers=bob)
    mine = _document(served, bob, guess["document_id"])
    assert "near_duplicate_of" not in mine.json()["metadata"], (
        "the upload was compared with a hidden document"
    )
    for response in (job, mine, served.client.get("/v1/documents", headers=bob)):
        assert secret_id not in response.text, "LEAK: the id of a document bob may not read"


def test_a_copy_of_a_readable_document_is_still_linked_to_it(served: Served):
    admin = served.key(user="root", admin=True)
    bob = served.key(user="bob")
    public_id = served.upload(admin, text=PUBLIC, source="moves.md")["document_id"]
    copy = served.upload(bob, text=PUBLIC, source="moves-copy.md")
    assert _document(served, bob, copy["document_id"]).json()["metadata"]["near_duplicate_of"] == public_id


def test_readers_of_a_copy_see_the_link_only_when_they_may_read_the_original(served: Served):
    admin = served.key(user="root", admin=True)
    alice = served.key(user="alice", groups=("exec",))
    bob = served.key(user="bob")
    secret_id = served.upload(admin, text=SECRET, source="board/minutes.md", acl={"groups": ["exec"]})[
        "document_id"
    ]
    copy_id = served.upload(alice, text=SECRET, source="minutes-copy.md")["document_id"]  # tenant-wide
    assert _document(served, alice, copy_id).json()["metadata"]["near_duplicate_of"] == secret_id
    seen_by_bob = _document(served, bob, copy_id)
    assert "near_duplicate_of" not in seen_by_bob.json()["metadata"]
    for response in (seen_by_bob, served.client.get("/v1/documents", headers=bob)):
        assert secret_id not in response.text, "LEAK: the id of a document bob may not read"
