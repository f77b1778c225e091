"""The audit trail over HTTP with API keys: what a tenant's admin reads at GET /v1/audit after
searches, asks, uploads and deletes; refused keys; query text only with audit_queries; the chain
verified by `fathom audit verify` (tampering by UPDATE and DELETE, concurrent requests)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fathom.cli import app as cli_app
from tests.service.conftest import Served

MARKER_QUERY = "quokkaflux handbook"  # "quokkaflux" is in no document: only the query has it
DOC = "# Handbook\n\nThe handbook says badges are renewed every spring."


def _site(
    serve: Callable[..., Served], **settings: Any
) -> tuple[Served, dict[str, str], dict[str, str], str]:
    served = serve(rate_limit_per_minute=0, **settings)
    admin = served.key(user="root", admin=True)
    alice = served.key(user="alice")
    doc_id = served.upload(admin, text=DOC, source="handbook.md", title="Handbook")["document_id"]
    return served, admin, alice, doc_id


def _events(served: Served, admin: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = served.client.get("/v1/audit", params=params, headers=admin)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def _key_id(served: Served, headers: dict[str, str]) -> str:
    key = headers["Authorization"].removeprefix("Bearer ")
    owner = served.fathom.keys.owner(key)
    assert owner is not None
    return owner[1]


def _files_with(home: Path, marker: bytes) -> list[str]:
    return [str(p) for p in home.rglob("*") if p.is_file() and marker in p.read_bytes()]


def test_a_search_is_listed_with_its_caller_request_and_returned_documents_but_not_its_text(serve):
    served, admin, alice, doc_id = _site(serve)
    response = served.client.post(
        "/v1/search", json={"query": MARKER_QUERY}, headers={**alice, "X-Request-ID": "req-search-1"}
    )
    assert response.status_code == 200 and response.json()["hits"]

    [event] = _events(served, admin, action="search")
    assert event["tenant"] == "acme" and event["outcome"] == "ok"
    assert event["actor"] == {"kind": "key", "id": _key_id(served, alice), "user": "alice"}
    assert event["request_id"] == "req-search-1"
    assert event["details"]["doc_ids"] == [doc_id]
    assert "query" not in event["details"] and len(event["details"]["query_hmac"]) == 64
    # Not in the log, nor anywhere else fathom wrote (database, WAL, indexes, logs).
    assert _files_with(served.fathom.home, b"quokkaflux") == []


def test_query_text_is_kept_only_when_audit_queries_is_on(serve):
    served, admin, alice, _ = _site(serve, audit_queries=True)
    served.client.post("/v1/search", json={"query": MARKER_QUERY}, headers=alice)
    [event] = _events(served, admin, action="search")
    assert event["details"]["query"] == MARKER_QUERY and "query_hmac" not in event["details"]


def test_an_answer_lists_the_documents_it_cites(serve):
    served, admin, alice, doc_id = _site(serve)
    answer = served.client.post("/v1/ask", json={"query": "When are badges renewed?"}, headers=alice).json()
    assert answer["citations"], answer
    [event] = _events(served, admin, action="ask")
    assert event["target"] == answer["answer_id"]
    assert event["details"]["doc_ids"] == [doc_id] and event["details"]["abstained"] is False


def test_document_changes_are_listed_as_they_happened(serve):
    served, admin, alice, doc_id = _site(serve)
    served.upload(admin, text=DOC + "\n\nUpdated.", source="handbook.md", title="Handbook")
    served.upload(admin, text=DOC + "\n\nUpdated.", source="handbook.md", acl={"groups": ["hr"]})
    denied = served.client.delete(f"/v1/documents/{doc_id}", headers={**served.key(groups=("hr",))})
    assert denied.status_code == 403
    deleted = served.client.delete(f"/v1/documents/{doc_id}", headers={**admin, "X-Request-ID": "req-del"})
    assert deleted.status_code == 200

    events = [e for e in _events(served, admin) if e["action"].startswith("document.")]
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("document.upload", "ok"),
        ("document.create", "ok"),
        ("document.upload", "ok"),
        ("document.replace", "ok"),
        ("document.upload", "ok"),
        ("document.acl_change", "ok"),
        ("document.delete", "document.delete_denied"),
        ("document.delete", "ok"),
    ]
    assert {e["target"] for e in events} == {doc_id}
    # The commit is recorded as the upload's job, for the uploader; the upload names the job.
    create = events[1]
    assert create["actor"]["kind"] == "job" and create["actor"]["id"] == events[0]["details"]["job_id"]
    assert create["actor"]["user"] == "root"
    assert events[5]["details"]["acl"] == {"users": [], "groups": ["hr"]}
    assert events[5]["details"]["previous_acl"] == {"users": [], "groups": []}
    assert events[-1]["request_id"] == "req-del" and events[-1]["actor"]["user"] == "root"
    assert all("text" not in e["details"] for e in events)


def test_refused_keys_are_recorded_in_the_tenant_they_name(serve):
    served, admin, alice, _ = _site(serve)
    key = alice["Authorization"].removeprefix("Bearer ")
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert (
        served.client.get("/v1/documents", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )
    assert served.client.get("/v1/documents", headers={"X-API-Key": "fth_nosuchprefix_x"}).status_code == 401

    [failure] = _events(served, admin, action="auth.failed")
    assert failure["target"] == _key_id(served, alice) and failure["outcome"] == "auth.invalid_key"
    assert failure["actor"] == {"kind": "unknown", "id": None, "user": None}
    [unknown] = served.fathom.audit.events(tenant="", action="auth.failed")
    assert unknown.target is None
    # Never the key itself.
    assert _files_with(served.fathom.home, forged.encode()) == []


def test_a_keys_creation_rotation_and_revocation_are_listed_without_its_secrets(serve):
    served, admin, _, _ = _site(serve)
    first, info = served.fathom.keys.create(tenant="acme", user="erin", role="reader", scopes=["search"])
    second, _ = served.fathom.keys.rotate(info.key_id, grace=timedelta(hours=1))
    served.fathom.keys.revoke(info.key_id)

    events = [e for e in _events(served, admin) if e["target"] == info.key_id]
    assert [e["action"] for e in events] == ["key.create", "key.rotate", "key.revoke"]
    assert events[0]["details"]["role"] == "reader" and events[0]["details"]["scopes"] == ["search"]
    assert events[1]["details"]["grace_seconds"] == 3600
    assert events[1]["details"]["old_prefix"] != events[1]["details"]["prefix"]
    for secret in (first, second):
        assert _files_with(served.fathom.home, secret.encode()) == []


def test_only_admins_read_the_trail_and_pages_follow_the_cursor(serve):
    served, admin, alice, _ = _site(serve)
    refused = served.client.get("/v1/audit", headers=alice)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "audit.admin_only"
    for n in range(5):
        served.client.post("/v1/search", json={"query": f"badges {n}"}, headers=alice)

    everything = _events(served, admin, limit=1000)
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = served.client.get("/v1/audit", params=params, headers=admin).json()
        seen += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["id"] for e in seen] == [e["id"] for e in everything]
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))

    by_alice = _events(served, admin, actor="alice", action="search")
    assert len(by_alice) == 5
    later = _events(served, admin, since=by_alice[2]["time"], action="search")
    assert [e["id"] for e in later] == [e["id"] for e in by_alice[2:]]
    earlier = _events(served, admin, until=by_alice[2]["time"], action="search")
    assert [e["id"] for e in earlier] == [e["id"] for e in by_alice[:2]]
    bad = served.client.get("/v1/audit", params={"cursor": "x"}, headers=admin)
    assert bad.json()["error"]["code"] == "audit.invalid_cursor"


def _verify(home: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["audit", "verify", "--home", str(home)])
    return result.exit_code, result.output


def test_verify_finds_a_modified_event_and_a_deleted_one(serve):
    served, admin, alice, _ = _site(serve)
    for n in range(4):
        served.client.post("/v1/search", json={"query": f"badges {n}"}, headers=alice)
    home = served.fathom.home
    assert _verify(home)[0] == 0
    searches = _events(served, admin, action="search")

    database = sqlite3.connect(home / "fathom.db")
    with database:
        database.execute("UPDATE audit_events SET actor_user = 'mallory' WHERE id = ?", (searches[1]["id"],))
    code, output = _verify(home)
    assert code == 1
    assert f"tenant acme: event {searches[1]['seq']} (id {searches[1]['id']}) was modified" in output

    with database:  # undo, then remove an event instead
        database.execute("UPDATE audit_events SET actor_user = 'alice' WHERE id = ?", (searches[1]["id"],))
    assert _verify(home)[0] == 0
    with database:
        database.execute("DELETE FROM audit_events WHERE id = ?", (searches[2]["id"],))
    database.close()
    code, output = _verify(home)
    assert code == 1
    assert f"event {searches[3]['seq']} (id {searches[3]['id']}) does not follow" in output


def test_the_chain_holds_under_concurrent_requests_and_writers(serve):
    served, admin, alice, _ = _site(serve)
    errors: list[BaseException] = []

    def search(n: int) -> None:
        try:
            for i in range(6):
                response = served.client.post("/v1/search", json={"query": f"badges {n} {i}"}, headers=alice)
                assert response.status_code == 200, response.text
        except BaseException as exc:  # reported below
            errors.append(exc)

    # A second store on the same file appends at the same time, as another process would.
    from fathom.store.audit import AuditEvent, AuditLog
    from fathom.store.database import Store

    other = Store(f"sqlite:///{served.fathom.home / 'fathom.db'}")
    other_log = AuditLog(other, served.fathom.settings)

    def append_elsewhere() -> None:
        try:
            for i in range(20):
                other_log.record(AuditEvent("acme", "search", details={"n": i}))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=search, args=(n,)) for n in range(6)]
    threads.append(threading.Thread(target=append_elsewhere))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()
    assert errors == []
    report = served.fathom.audit.verify()
    assert report.ok, report.broken
    searches = [e for e in _events(served, admin, limit=1000) if e["action"] == "search"]
    assert len(searches) == 6 * 6 + 20
    code, output = _verify(served.fathom.home)
    assert code == 0 and "chains intact" in output
