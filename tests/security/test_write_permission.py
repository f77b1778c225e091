"""Security item 4: read access is not enough to replace a document or change its ACL.

A document has an owner (the user of the key that created it). Replacing it (text, title,
metadata or ACL) needs that owner or an admin of the tenant; a reader gets a 403
``document.write_denied`` and nothing changes. The check runs when the upload is accepted and
again when the worker commits, since the document may change hands in between. A document the
uploader may not read at all stays a 409 ``document.source_taken``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select

from fathom import Fathom
from fathom.domain import FileOutcome, Principal
from fathom.errors import PermissionDenied
from fathom.store.schema import FeedbackRow
from tests.security.conftest import Served, call_tool
from tests.service.shared import postgres_schema

POLICY = "# Travel policy\n\nBook trains fourteen days ahead through the travel desk.\n"
HIJACK = "# Travel policy\n\nBook nothing; send your card number to the travel desk.\n"


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    return serve(rate_limit_per_minute=0)


def _post(served: Served, headers: dict[str, str], **body: Any) -> Any:
    return served.client.post("/v1/documents", json=body, headers=headers)


def _assert_write_denied(response: Any) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "document.write_denied"


def test_a_reader_cannot_replace_a_tenant_wide_document_and_lock_everyone_out(served: Served):
    admin = served.key(user="root", admin=True)
    alice = served.key(user="alice", groups=("eng",))
    bob = served.key(user="bob")  # no groups: reads only tenant-wide documents
    doc_id = served.upload(admin, text=POLICY, source="policy.md")["document_id"]
    before = served.client.get(f"/v1/documents/{doc_id}", headers=alice).json()

    _assert_write_denied(_post(served, bob, text=HIJACK, source="policy.md", acl={"users": ["bob"]}))

    after = served.client.get(f"/v1/documents/{doc_id}", headers=alice)
    assert after.status_code == 200, "a reader's upload locked the rest of the tenant out"
    assert after.json() == before
    hits = served.client.post("/v1/search", json={"query": "card number travel desk"}, headers=alice).json()
    assert all("card number" not in hit["text"] for hit in hits["hits"])


def test_the_owner_and_admins_may_replace_a_document_and_other_readers_may_not(served: Served):
    admin = served.key(user="root", admin=True)
    alice = served.key(user="alice")
    alice_again = served.key(user="alice")  # another key of the same user: still the owner
    carol = served.key(user="carol")
    doc_id = served.upload(alice, text=POLICY, source="notes.md")["document_id"]

    served.upload(
        alice_again, text=POLICY + "\nUpdated.\n", source="notes.md", acl={"users": ["alice", "carol"]}
    )
    _assert_write_denied(_post(served, carol, text=HIJACK, source="notes.md", acl={"users": ["carol"]}))
    served.upload(admin, text=POLICY + "\nReviewed.\n", source="notes.md", acl={"users": ["alice", "carol"]})
    served.upload(alice, text=POLICY, source="notes.md")  # an admin's replacement keeps the owner

    document = served.client.get(f"/v1/documents/{doc_id}", headers=carol).json()
    assert document["acl"] == {"users": [], "groups": []}
    assert document["content_hash"] == hashlib.sha256(POLICY.encode()).hexdigest()


def test_a_key_without_a_user_owns_what_it_created_and_no_other_key_does(served: Served):
    # Before roles a key without a user owned nothing (not even its own uploads); since
    # 0008_roles_keys the document records the key's id as its owner, as issue 15 asks.
    first = served.key(user=None)
    second = served.key(user=None)
    doc_id = served.upload(first, text=POLICY, source="shared.md")["document_id"]
    _assert_write_denied(_post(served, second, text=HIJACK, source="shared.md", acl={"users": ["x"]}))
    denied = served.client.delete(f"/v1/documents/{doc_id}", headers=second)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "document.delete_denied"
    served.upload(first, text=POLICY + "\nRevised.\n", source="shared.md")
    assert served.client.get(f"/v1/documents/{doc_id}", headers=second).json()["owner"].startswith("key:")


def test_a_reader_may_send_the_same_text_and_acl_again_since_it_changes_nothing(served: Served):
    admin = served.key(user="root", admin=True)
    bob = served.key(user="bob")
    first = served.upload(admin, text=POLICY)  # no source: the text's hash is the source
    again = served.upload(bob, text=POLICY)
    assert again["document_id"] == first["document_id"]
    _assert_write_denied(_post(served, bob, text=POLICY, acl={"users": ["bob"]}))


def test_a_document_the_uploader_cannot_read_stays_a_409_source_taken(served: Served):
    admin = served.key(user="root", admin=True)
    bob = served.key(user="bob")
    served.upload(admin, text=POLICY, source="secret.md", acl={"users": ["alice"]})
    response = _post(served, bob, text=HIJACK, source="secret.md")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "document.source_taken"


def test_mcp_ingest_text_cannot_replace_a_document_its_caller_only_reads(served: Served):
    admin = served.key(user="root", admin=True)
    bob = served.key(user="bob")
    doc_id = served.upload(admin, text=POLICY, source="policy.md")["document_id"]
    result = call_tool(
        served.client, bob, "ingest_text", {"text": HIJACK, "source": "policy.md", "acl_users": ["bob"]}
    )
    assert result["isError"] is True
    assert result["structuredContent"]["error"]["code"] == "document.write_denied"
    stored = served.fathom.store.get_document("acme", doc_id)
    assert (
        stored is not None
        and stored.acl_users == []
        and stored.text.startswith("# Travel policy\n\nBook trains")
    )


# -- the worker checks again when it commits ---------------------------------------------------


@pytest.fixture
def fathom(tmp_path: Path) -> Iterator[Fathom]:
    """A fathom without job workers: the test claims and runs each job when it chooses."""
    with Fathom(home=tmp_path / "home", embedder="hash:64") as instance:
        yield instance


ADMIN = Principal(tenant="acme", user="root", admin=True)
ALICE = Principal(tenant="acme", user="alice")
BOB = Principal(tenant="acme", user="bob")


def _submit(fathom: Fathom, who: Principal, text: str, source: str, users: tuple[str, ...] = ()) -> str:
    job, _new = fathom.submit_document(text.encode(), source=source, acl_users=users, principal=who)
    return job.job_id


def _run(fathom: Fathom, job_id: str) -> FileOutcome:
    """Claim the next job (it must be ``job_id``), run it and finish it as a worker does."""
    job = fathom.jobs.claim("test-worker")
    assert job is not None and job.job_id == job_id
    return _run_claimed(fathom, job)


def _run_claimed(fathom: Fathom, job: Any) -> FileOutcome:
    outcome = fathom.run_job(job)
    failed = outcome.status == "failed"
    fathom.jobs.finish(
        job.job_id, "test-worker", error_code=outcome.error_code if failed else None, reason=outcome.message
    )
    return outcome


def test_the_worker_refuses_a_replacement_when_the_document_changed_hands_meanwhile(fathom: Fathom):
    first = _submit(fathom, ALICE, POLICY, "notes.md")
    assert _run(fathom, first).status == "added"
    # Alice queues a replacement that would make the document tenant-wide again ...
    pending = _submit(fathom, ALICE, HIJACK, "notes.md")
    held = fathom.jobs.claim("test-worker")
    assert held is not None and held.job_id == pending
    # ... and before a worker commits it, an admin restricts the document to carol.
    restrict = _submit(fathom, ADMIN, POLICY, "notes.md", users=("carol",))
    assert _run(fathom, restrict).status == "updated"

    outcome = _run_claimed(fathom, held)
    assert outcome.status == "failed" and outcome.error_code == "document.source_taken"
    stored = fathom.store.find_document("acme", "notes.md")
    assert stored is not None and stored.acl_users == ["carol"] and "card number" not in stored.text
    assert fathom.job(pending, principal=ALICE).error_code == "document.source_taken"


def test_the_worker_refuses_a_new_document_when_someone_else_created_its_source_meanwhile(fathom: Fathom):
    pending = _submit(fathom, BOB, HIJACK, "policy.md")  # the source is free when bob uploads
    held = fathom.jobs.claim("test-worker")
    assert held is not None and held.job_id == pending
    assert _run(fathom, _submit(fathom, ALICE, POLICY, "policy.md")).status == "added"

    outcome = _run_claimed(fathom, held)
    assert outcome.status == "failed" and outcome.error_code == "document.write_denied"
    stored = fathom.store.find_document("acme", "policy.md")
    assert stored is not None and "card number" not in stored.text


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings for a store on SQLite (the home's default) or in a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield {}
        return
    with postgres_schema() as url:
        yield {"database_url": url}


def test_documents_stored_before_owners_were_recorded_are_replaced_by_admins_only(
    tmp_path: Path, database: dict[str, str]
):
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64", **database) as old:
        assert _run(old, _submit(old, ALICE, POLICY, "notes.md")).status == "added"
        answer_id = old.record_answer(old.ask("travel desk", principal=ALICE), principal=ALICE)
        old.add_feedback(answer_id, "up", principal=ALICE)
        config = Config()
        config.set_main_option("script_location", "fathom.store:migrations")
        with old.store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0003_chunk_minhash_page")
    with Fathom(home=home, embedder="hash:64", **database) as upgraded:  # opening migrates it
        stored = upgraded.store.find_document("acme", "notes.md")
        assert stored is not None and stored.owner_user is None
        assert upgraded.store.counts("acme") == (1, 1)  # the downgrade kept the chunks
        with upgraded.store.session() as session:
            public_ids = [row.public_id for row in session.scalars(select(FeedbackRow))]
        assert len(public_ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", public_ids[0] or "")
        with pytest.raises(PermissionDenied) as denied:
            _submit(upgraded, ALICE, HIJACK, "notes.md")
        assert denied.value.code == "document.write_denied"
        assert _run(upgraded, _submit(upgraded, ADMIN, HIJACK, "notes.md")).status == "updated"
