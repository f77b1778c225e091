"""Security item 4: read access is not enough to replace a document or change its ACL.

A document has an owner (the user of the key that created it, or the key itself when it has no
user). Replacing it (text, title, metadata or ACLs) needs an editor that owns it or is named in
its write ACL, or an admin of the tenant; anyone else gets a 403 ``document.write_denied`` and
nothing changes; a reader never writes, and a key without the ``write`` scope gets
``auth.scope_missing`` (:mod:`fathom.permissions`). The check runs when the upload is accepted and
again when the worker commits, since the document may change hands in between. A document the
uploader may not read at all stays a 409 ``document.source_taken``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select

from fathom import Fathom
from fathom.domain import FileOutcome, Principal
from fathom.errors import PermissionDenied
from fathom.store.schema import ApiKeyRow, FeedbackRow
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
    assert result["_meta"]["fathom/error"]["code"] == "document.write_denied"
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


def test_keys_documents_and_jobs_from_before_roles_keep_what_they_could_do(
    tmp_path: Path, database: dict[str, str]
):
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64", **database) as old:
        admin_key, _ = old.keys.create(tenant="acme", user="root", admin=True)
        alice_key, _ = old.keys.create(tenant="acme", user="alice")
        assert _run(old, _submit(old, ALICE, POLICY, "notes.md")).status == "added"
        pending = _submit(old, ADMIN, POLICY + "\nReviewed.\n", "notes.md")  # queued before the upgrade
        config = Config()
        config.set_main_option("script_location", "fathom.store:migrations")
        with old.store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0007_webhooks_usage")
    with Fathom(home=home, embedder="hash:64", **database) as upgraded:  # opening migrates it
        _, root = upgraded.keys.authenticate(admin_key)
        _, alice = upgraded.keys.authenticate(alice_key)
        assert (root.role, root.admin, root.scopes) == ("admin", True, None)
        assert (alice.role, alice.admin, alice.scopes) == ("editor", False, None)
        assert [(k.role, k.expires_at) for k in upgraded.keys.list()] == [("admin", None), ("editor", None)]
        stored = upgraded.store.find_document("acme", "notes.md")
        assert stored is not None and (stored.owner_user, stored.owner_key, stored.write_users) == (
            "alice",
            None,
            None,
        )
        # The job an admin queued before the upgrade still commits as an admin ...
        assert _run(upgraded, pending).status == "updated"
        # ... and a key without the admin flag is an editor: it replaces its own document.
        assert _run(upgraded, _submit(upgraded, alice, HIJACK, "notes.md")).status == "updated"
        with pytest.raises(PermissionDenied) as denied:
            _submit(upgraded, BOB, POLICY, "notes.md")
        assert denied.value.code == "document.write_denied"


# -- roles, scopes and expiry over HTTP and MCP ------------------------------------------------


def test_a_reader_searches_and_asks_but_adds_nothing(served: Served):
    admin = served.key(user="root", admin=True)
    reader = served.key(user="rita", role="reader")
    served.upload(admin, text=POLICY, source="policy.md")
    _assert_write_denied(_post(served, reader, text=HIJACK, source="new.md"))
    _assert_write_denied(_post(served, reader, text=HIJACK, source="policy.md"))
    hits = served.client.post("/v1/search", json={"query": "travel desk"}, headers=reader)
    assert hits.status_code == 200 and hits.json()["hits"]
    asked = served.client.post("/v1/ask", json={"query": "How do I book trains?"}, headers=reader)
    assert asked.status_code == 200
    rated = served.client.post(
        "/v1/feedback", json={"answer_id": asked.json()["answer_id"], "rating": "up"}, headers=reader
    )
    assert rated.status_code == 201
    result = call_tool(served.client, reader, "ingest_text", {"text": HIJACK, "source": "mcp.md"})
    assert result["isError"] is True
    assert result["_meta"]["fathom/error"]["code"] == "document.write_denied"
    assert served.fathom.store.find_document("acme", "mcp.md") is None


def test_a_read_only_key_is_refused_every_write_with_scope_missing(served: Served):
    admin = served.key(user="root", admin=True)
    integration = served.key(user=None, role="admin", scopes=("search", "ask"))
    doc_id = served.upload(admin, text=POLICY, source="policy.md")["document_id"]
    for response in (
        _post(served, integration, text=HIJACK, source="policy.md"),
        _post(served, integration, text=HIJACK, source="new.md"),
        served.client.delete(f"/v1/documents/{doc_id}", headers=integration),
        served.client.get("/v1/webhooks", headers=integration),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "auth.scope_missing"
    assert served.client.get(f"/v1/documents/{doc_id}", headers=integration).status_code == 200
    search_only = served.key(user="sam", scopes=("search",))
    refused = served.client.post("/v1/ask", json={"query": "trains"}, headers=search_only)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "auth.scope_missing"


def test_an_expired_key_gets_a_401_with_its_own_code(served: Served):
    key, info = served.fathom.keys.create(tenant="acme", user="alice", expires_at=None)
    headers = {"Authorization": f"Bearer {key}"}
    assert served.client.get("/v1/documents", headers=headers).status_code == 200
    with served.fathom.store.session() as session:
        row = session.get(ApiKeyRow, info.key_id)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    response = served.client.get("/v1/documents", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.key_expired"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_editor_named_in_the_write_acl_replaces_and_deletes_and_may_hand_it_on(served: Served):
    erin = served.key(user="erin")
    gail = served.key(user="gail", groups=("writers",))
    zed = served.key(user="zed")
    doc_id = served.upload(erin, text=POLICY, source="plan.md", write_acl={"groups": ["writers"]})[
        "document_id"
    ]
    _assert_write_denied(_post(served, zed, text=HIJACK, source="plan.md"))
    served.upload(gail, text=POLICY + "\nGail's edit.\n", source="plan.md", write_acl={"users": ["zed"]})
    document = served.client.get(f"/v1/documents/{doc_id}", headers=zed).json()
    assert document["owner"] == "erin" and document["write_acl"] == {"users": ["zed"], "groups": []}
    _assert_write_denied(_post(served, gail, text=HIJACK, source="plan.md"))  # no longer named
    assert served.client.delete(f"/v1/documents/{doc_id}", headers=zed).status_code == 200


def test_mcp_ingest_text_sets_a_write_acl_that_lets_a_granted_editor_replace(served: Served):
    erin = served.key(user="erin")
    gail = served.key(user="gail", groups=("writers",))
    zed = served.key(user="zed")
    created = call_tool(
        served.client, erin, "ingest_text", {"text": POLICY, "source": "mcp.md", "write_groups": ["writers"]}
    )
    assert created["isError"] is False and created["structuredContent"]["status"] == "succeeded"
    refused = call_tool(served.client, zed, "ingest_text", {"text": HIJACK, "source": "mcp.md"})
    assert refused["_meta"]["fathom/error"]["code"] == "document.write_denied"
    replaced = call_tool(
        served.client, gail, "ingest_text", {"text": POLICY + "\nGail.\n", "source": "mcp.md"}
    )
    assert replaced["isError"] is False, replaced
    stored = served.fathom.store.find_document("acme", "mcp.md")
    assert stored is not None and stored.owner_user == "erin" and stored.write_groups == ["writers"]
    assert stored.text.endswith("Gail.")
