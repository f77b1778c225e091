"""The permission matrix: every principal calls every endpoint about every document.

Two tenants; users with and without groups; the same user and group names in both tenants;
documents readable by the whole tenant, by one user, by one group, and by a user or a group.
Each document carries a secret marker in its source, title and text. Whatever the endpoint, a
principal that may not read a document never sees its marker, and gets a 404 where it names
the document; a principal that may read it finds it. The expected access is written out by
hand below, not computed by fathom's own rule.

The second matrix is roles x write operations: 10 principals (each role; owners, write-ACL
grantees by user and by group, a reader with the owner's name, read-only scoped keys, another
tenant's admin) x 2 documents (tenant-wide and restricted, both with a write ACL) x 3 operations
(replace, ACL change, delete), plus each principal rating two answers: 80 calls, each expected
outcome written out by hand in ``WRITE_OUTCOMES`` and ``FEEDBACK_OUTCOMES``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import Served
from tests.service.shared import postgres_schema

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PRINCIPALS: dict[str, dict[str, Any]] = {
    "acme-admin": {"tenant": "acme", "user": "root", "admin": True},
    "acme-alice": {"tenant": "acme", "user": "alice", "groups": ("eng",)},
    "acme-bob": {"tenant": "acme", "user": "bob"},
    "acme-carol": {"tenant": "acme", "user": "carol", "groups": ("sales",)},
    "globex-admin": {"tenant": "globex", "user": "root", "admin": True},
    "globex-dave": {"tenant": "globex", "user": "dave", "groups": ("eng",)},
    "globex-alice": {"tenant": "globex", "user": "alice"},
}

# name: (tenant, acl, topic)
DOCUMENTS: dict[str, tuple[str, dict[str, list[str]], str]] = {
    "acme-public": ("acme", {}, "harbour crane inspection"),
    "acme-alice": ("acme", {"users": ["alice"]}, "salary review for the platform lead"),
    "acme-eng": ("acme", {"groups": ["eng"]}, "database failover runbook"),
    "acme-bob-or-sales": ("acme", {"users": ["bob"], "groups": ["sales"]}, "commission plan for resellers"),
    "globex-public": ("globex", {}, "cafeteria menu rotation"),
    "globex-eng": ("globex", {"groups": ["eng"]}, "cluster upgrade schedule"),
    "globex-alice": ("globex", {"users": ["alice"]}, "relocation request to the lisbon office"),
}

READERS: dict[str, set[str]] = {
    "acme-public": {"acme-admin", "acme-alice", "acme-bob", "acme-carol"},
    "acme-alice": {"acme-admin", "acme-alice"},
    "acme-eng": {"acme-admin", "acme-alice"},
    "acme-bob-or-sales": {"acme-admin", "acme-bob", "acme-carol"},
    "globex-public": {"globex-admin", "globex-dave", "globex-alice"},
    "globex-eng": {"globex-admin", "globex-dave"},
    "globex-alice": {"globex-admin", "globex-alice"},
}

ENDPOINTS = ("search", "ask", "ask-stream", "document-get", "document-list", "document-delete", "job-status")


def marker(document: str) -> str:
    return "secret" + document.replace("-", "") + "x9q"


def question(document: str) -> str:
    return f"What is the code word for the {DOCUMENTS[document][2]}?"


def _text(document: str) -> str:
    topic = DOCUMENTS[document][2]
    return (
        f"# The {topic} {marker(document)}\n\n"
        f"This page describes the {topic}. The code word for the {topic} is {marker(document)}. "
        f"Nobody outside the audience of the {topic} should read this page.\n"
    )


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Any:
    """The matrix's world on each search backend: embedded (SQLite + files), and postgres (the
    store and the search tables in one PostgreSQL 18 with pgvector)."""
    from fastapi.testclient import TestClient

    from fathom import Fathom
    from fathom.service import create_app

    backend: dict[str, Any] = {}
    database = None
    if request.param == "postgres":
        from tests.pg import fresh_database

        database = fresh_database(request.getfixturevalue("local_postgres"))
        backend = {"index_backend": "postgres", "database_url": database.__enter__()}
    # Rate limits are tested elsewhere; here they would only slow the matrix down.
    fathom = Fathom(
        home=tmp_path_factory.mktemp("matrix") / "home",
        embedder=embedder,
        rate_limit_per_minute=0,
        **backend,
    )
    client = TestClient(create_app(fathom=fathom), raise_server_exceptions=False)
    client.__enter__()
    served = Served(client, fathom)
    keys = {name: served.key(**spec) for name, spec in PRINCIPALS.items()}
    docs: dict[str, dict[str, Any]] = {}
    for name, (tenant, acl, _topic) in DOCUMENTS.items():
        admin = keys[f"{tenant}-admin"]
        docs[name] = served.upload(
            admin, text=_text(name), source=f"{marker(name)}.md", acl=acl, title=f"The {DOCUMENTS[name][2]}"
        )
    yield served, keys, docs
    client.__exit__(None, None, None)
    fathom.close()
    if database is not None:
        database.__exit__(None, None, None)


def _call(served: Served, endpoint: str, headers: dict[str, str], document: str, ids: dict[str, Any]) -> Any:
    client = served.client
    if endpoint == "search":
        return client.post("/v1/search", json={"query": question(document), "k": 10}, headers=headers)
    if endpoint == "ask":
        return client.post("/v1/ask", json={"query": question(document)}, headers=headers)
    if endpoint == "ask-stream":
        stream_headers = {**headers, "Accept": "text/event-stream"}
        return client.post("/v1/ask", json={"query": question(document)}, headers=stream_headers)
    if endpoint == "document-get":
        return client.get(f"/v1/documents/{ids['document_id']}", headers=headers)
    if endpoint == "document-list":
        return client.get("/v1/documents", headers=headers)
    if endpoint == "document-delete":
        return client.delete(f"/v1/documents/{ids['document_id']}", headers=headers)
    if endpoint == "job-status":
        return client.get(f"/v1/jobs/{ids['job_id']}", headers=headers)
    raise AssertionError(endpoint)


def _assert_not_found(response: Any, where: str) -> None:
    assert response.status_code == 404, where
    assert response.json()["error"]["code"].endswith("not_found"), where


CHECKS: dict[str, Callable[[Any, bool, str, dict[str, Any], str], None]] = {}


def _check(endpoint: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(function: Callable[..., None]) -> Callable[..., None]:
        CHECKS[endpoint] = function
        return function

    return register


@_check("search")
def _search(response: Any, readable: bool, secret: str, ids: dict[str, Any], where: str) -> None:
    assert response.status_code == 200, where
    found = [hit["doc_id"] for hit in response.json()["hits"]]
    if readable:  # the document is there, and it is what the question is about
        assert found and found[0] == ids["document_id"], where


@_check("ask")
def _ask(response: Any, readable: bool, secret: str, ids: dict[str, Any], where: str) -> None:
    assert response.status_code == 200, where
    body = response.json()
    if readable:
        assert secret in body["answer"], where
        assert {c["doc_id"] for c in body["citations"]} == {ids["document_id"]}, where


@_check("ask-stream")
def _ask_stream(response: Any, readable: bool, secret: str, ids: dict[str, Any], where: str) -> None:
    assert response.status_code == 200, where
    events = [block for block in response.text.split("\n\n") if block.strip()]
    names = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert names[-2:] == ["citations", "done"] and set(names[:-2]) <= {"delta"}, where
    done = json.loads(events[-1].split("\n", 1)[1].removeprefix("data: "))
    if readable:
        assert secret in done["answer"], where


@_check("document-get")
def _get(response: Any, readable: bool, secret: str, ids: dict[str, Any], where: str) -> None:
    if readable:
        assert response.status_code == 200 and response.json()["doc_id"] == ids["document_id"], where
    else:
        _assert_not_found(response, where)


@_check("document-list")
def _list(response: Any, readable: bool, secret: str, ids: dict[str, Any], where: str) -> None:
    assert response.status_code == 200, where
    listed = {doc["doc_id"] for doc in response.json()["documents"]}
    assert (ids["document_id"] in listed) == readable, where


@_check("document-delete")
def _delete(response: Any, readable: bool, secret: str, ids: dict[str, Any], where: str) -> None:
    if readable:  # non-admin readers may not delete; admins are checked after the matrix
        assert response.status_code == 403, where
        assert response.json()["error"]["code"] == "document.delete_denied", where
    else:
        _assert_not_found(response, where)


@_check("job-status")
def _job(response: Any, readable: bool, secret: str, ids: dict[str, Any], where: str) -> None:
    if readable:
        assert response.status_code == 200 and response.json()["status"] == "succeeded", where
    else:
        _assert_not_found(response, where)


def test_permission_matrix_has_no_leaks(world: Any) -> None:
    served, keys, docs = world
    checked = 0
    for principal, headers in keys.items():
        for document, ids in docs.items():
            readable = principal in READERS[document]
            for endpoint in ENDPOINTS:
                if endpoint == "document-delete" and PRINCIPALS[principal].get("admin") and readable:
                    continue  # deleting would change the world; done below
                where = f"{principal} {endpoint} {document}"
                response = _call(served, endpoint, headers, document, ids)
                if not readable:
                    assert marker(document) not in response.text, f"LEAK: {where}"
                CHECKS[endpoint](response, readable, marker(document), ids, where)
                checked += 1
    # 7 principals x 7 documents x 7 endpoints, less the 7 admin deletions of their own documents.
    assert checked == len(PRINCIPALS) * len(DOCUMENTS) * len(ENDPOINTS) - len(DOCUMENTS)


def test_feedback_only_from_whoever_received_the_answer(world: Any) -> None:
    served, keys, _docs = world
    answers = {}
    for principal, headers in keys.items():
        response = served.client.post("/v1/ask", json={"query": question("acme-public")}, headers=headers)
        answers[principal] = response.json()["answer_id"]
    for rater, headers in keys.items():
        for receiver, answer_id in answers.items():
            response = served.client.post(
                "/v1/feedback", json={"answer_id": answer_id, "rating": "up"}, headers=headers
            )
            same_tenant = PRINCIPALS[rater]["tenant"] == PRINCIPALS[receiver]["tenant"]
            allowed = same_tenant and (rater == receiver or PRINCIPALS[rater].get("admin", False))
            where = f"{rater} rates the answer {receiver} received"
            if allowed:
                assert response.status_code == 201, where
            else:
                _assert_not_found(response, where)


def test_admins_delete_their_tenants_documents_and_nobody_finds_them_after(world: Any) -> None:
    served, keys, docs = world
    for document, ids in docs.items():
        tenant = DOCUMENTS[document][0]
        other = "globex" if tenant == "acme" else "acme"
        response = served.client.delete(f"/v1/documents/{ids['document_id']}", headers=keys[f"{other}-admin"])
        _assert_not_found(response, f"{other}-admin deletes {document}")
        response = served.client.delete(
            f"/v1/documents/{ids['document_id']}", headers=keys[f"{tenant}-admin"]
        )
        assert response.status_code == 200, document
    for principal, headers in keys.items():
        for document, ids in docs.items():
            response = served.client.get(f"/v1/documents/{ids['document_id']}", headers=headers)
            _assert_not_found(response, f"{principal} gets deleted {document}")
            hits = served.client.post("/v1/search", json={"query": question(document)}, headers=headers)
            assert marker(document) not in hits.text


# -- roles x write operations ------------------------------------------------------------------
#
# Every principal below replaces, re-ACLs and deletes its own fresh copy of each of two
# documents of tenant acme (created by the editor erin, so erin owns them), and rates two answers.
# The expected outcome of every call is written out by hand: fathom's rule is not consulted.

WRITERS: dict[str, dict[str, Any]] = {
    "admin": {"user": "root", "role": "admin"},
    "owner": {"user": "erin", "role": "editor"},
    "user-grant": {"user": "gus", "role": "editor"},
    "group-grant": {"user": "gail", "groups": ("writers",), "role": "editor"},
    "editor": {"user": "ed", "role": "editor"},
    "reader-owner": {"user": "erin", "role": "reader"},  # the owner's name, with a reader's role
    "reader-grant": {"user": "gus", "role": "reader"},  # named in the write ACL, but a reader
    "read-only-admin": {"user": "audit", "role": "admin", "scopes": ("search", "ask")},
    "search-only": {"user": "sam", "role": "editor", "scopes": ("search",)},
    "other-tenant-admin": {"tenant": "globex", "user": "root", "role": "admin"},
}

# name: (read ACL, write ACL); erin creates both.
WRITTEN: dict[str, tuple[dict[str, list[str]], dict[str, list[str]]]] = {
    "open": ({}, {"users": ["gus"], "groups": ["writers"]}),
    "closed": ({"users": ["erin", "gus"]}, {"users": ["gus"], "groups": ["writers"]}),
}

OK = "ok"
WRITE_DENIED = "403 document.write_denied"
DELETE_DENIED = "403 document.delete_denied"
SCOPE = "403 auth.scope_missing"
TAKEN = "409 document.source_taken"
GONE = "404 document.not_found"
ANSWER_GONE = "404 answer.not_found"
ELSEWHERE = "202, a new document in the caller's own tenant"

# (principal, document): (replace, ACL change, delete)
WRITE_OUTCOMES: dict[tuple[str, str], tuple[str, str, str]] = {
    ("admin", "open"): (OK, OK, OK),
    ("admin", "closed"): (OK, OK, OK),
    ("owner", "open"): (OK, OK, OK),
    ("owner", "closed"): (OK, OK, OK),
    ("user-grant", "open"): (OK, OK, OK),
    ("user-grant", "closed"): (OK, OK, OK),
    ("group-grant", "open"): (OK, OK, OK),
    ("group-grant", "closed"): (TAKEN, TAKEN, GONE),  # granted write, but may not read it
    ("editor", "open"): (WRITE_DENIED, WRITE_DENIED, DELETE_DENIED),
    ("editor", "closed"): (TAKEN, TAKEN, GONE),
    ("reader-owner", "open"): (WRITE_DENIED, WRITE_DENIED, DELETE_DENIED),
    ("reader-owner", "closed"): (WRITE_DENIED, WRITE_DENIED, DELETE_DENIED),
    ("reader-grant", "open"): (WRITE_DENIED, WRITE_DENIED, DELETE_DENIED),
    ("reader-grant", "closed"): (WRITE_DENIED, WRITE_DENIED, DELETE_DENIED),
    ("read-only-admin", "open"): (SCOPE, SCOPE, SCOPE),
    ("read-only-admin", "closed"): (SCOPE, SCOPE, SCOPE),
    ("search-only", "open"): (SCOPE, SCOPE, SCOPE),
    ("search-only", "closed"): (TAKEN, TAKEN, GONE),
    ("other-tenant-admin", "open"): (ELSEWHERE, ELSEWHERE, GONE),
    ("other-tenant-admin", "closed"): (ELSEWHERE, ELSEWHERE, GONE),
}

# principal: (rating the answer it received, rating the answer erin's editor key received)
FEEDBACK_OUTCOMES: dict[str, tuple[str, str]] = {
    "admin": (OK, OK),
    "owner": (OK, OK),
    "user-grant": (OK, ANSWER_GONE),
    "group-grant": (OK, ANSWER_GONE),
    "editor": (OK, ANSWER_GONE),
    "reader-owner": (OK, OK),  # the same user as the owner key: the same person
    "reader-grant": (OK, ANSWER_GONE),
    "read-only-admin": (OK, OK),
    "search-only": (SCOPE, SCOPE),  # without `ask` it neither asks nor rates
    "other-tenant-admin": (OK, ANSWER_GONE),
}

OPERATIONS = ("replace", "acl-change", "delete")


def _outcome(response: Any) -> str:
    if response.status_code in (200, 201, 202):
        return OK
    return f"{response.status_code} {response.json()['error']['code']}"


@pytest.fixture(params=["sqlite", "postgresql"])
def writers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Served, dict[str, dict[str, str]]]]:
    """The write matrix's app, its store on SQLite or in a fresh PostgreSQL schema (the write
    checks run in the store's transaction, with the document's row locked)."""
    from fastapi.testclient import TestClient

    from fathom import Fathom
    from fathom.service import create_app

    with contextlib.ExitStack() as stack:
        database = {}
        if request.param == "postgresql":
            database = {"database_url": stack.enter_context(postgres_schema())}
        fathom = stack.enter_context(
            Fathom(home=tmp_path / "home", embedder="hash:64", rate_limit_per_minute=0, **database)
        )
        client = stack.enter_context(TestClient(create_app(fathom=fathom), raise_server_exceptions=False))
        served = Served(client, fathom)
        keys = {name: served.key(**{"tenant": "acme", **spec}) for name, spec in WRITERS.items()}
        yield served, keys


def _body(source: str, document: str, operation: str, text: str = "") -> dict[str, Any]:
    acl, write_acl = WRITTEN[document]
    if operation == "acl-change":  # the same text, new read and write ACLs
        acl = {"users": [*acl.get("users", []), "zed"]} if acl else {"users": ["erin", "zed"]}
        write_acl = {"users": ["zed"]}
    return {
        "text": text or f"# Plan {source}\n\nThe plan for {source}.\n",
        "source": source,
        "acl": acl,
        "write_acl": write_acl,
    }


def test_roles_by_write_operations_matrix(writers: tuple[Served, dict[str, dict[str, str]]]) -> None:
    served, keys = writers
    admin = keys["admin"]
    created: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}
    jobs = []
    for principal in WRITERS:
        for document in WRITTEN:
            for operation in OPERATIONS:
                source = f"{principal}-{document}-{operation}.md"
                accepted = served.client.post(
                    "/v1/documents", json=_body(source, document, "create"), headers=keys["owner"]
                )
                assert accepted.status_code == 202, accepted.text
                jobs.append(accepted.json()["job_id"])
                created[principal, document, operation] = (accepted.json()["document_id"], {})
    for job_id in jobs:
        assert served.wait_job(job_id, admin)["status"] == "succeeded"
    for key, (doc_id, _) in created.items():
        created[key] = (doc_id, served.client.get(f"/v1/documents/{doc_id}", headers=admin).json())
        assert created[key][1]["owner"] == "erin" and created[key][1]["write_acl"]["users"] == ["gus"]

    checked = 0
    pending = []
    for (principal, document), expected in WRITE_OUTCOMES.items():
        for operation, outcome in zip(OPERATIONS, expected, strict=True):
            doc_id, before = created[principal, document, operation]
            where = f"{principal} {operation} {document}"
            source = before["source"]
            if operation == "delete":
                response = served.client.delete(f"/v1/documents/{doc_id}", headers=keys[principal])
            else:
                text = f"# Plan {source}\n\nRewritten by {principal}.\n" if operation == "replace" else ""
                body = _body(source, document, operation, text)
                response = served.client.post("/v1/documents", json=body, headers=keys[principal])
            got = _outcome(response)
            assert got == (OK if outcome == ELSEWHERE else outcome), f"{where}: {got}, expected {outcome}"
            if response.status_code == 202:
                pending.append((response.json()["job_id"], keys[principal]))
            checked += 1
    for job_id, headers in pending:
        assert served.wait_job(job_id, headers)["status"] == "succeeded"

    # What the calls left: allowed changes happened, refused ones changed nothing.
    for (principal, document), expected in WRITE_OUTCOMES.items():
        for operation, outcome in zip(OPERATIONS, expected, strict=True):
            doc_id, before = created[principal, document, operation]
            where = f"{principal} {operation} {document}"
            after = served.client.get(f"/v1/documents/{doc_id}", headers=admin)
            if outcome != OK:
                assert after.status_code == 200 and after.json() == before, where
            elif operation == "delete":
                assert after.status_code == 404, where
            elif operation == "replace":
                assert after.json()["content_hash"] != before["content_hash"], where
                assert after.json()["owner"] == "erin", where  # a replacement keeps the owner
            else:
                assert after.json()["content_hash"] == before["content_hash"], where
                assert "zed" in after.json()["acl"]["users"], where
                assert after.json()["write_acl"] == {"users": ["zed"], "groups": []}, where

    # Feedback: every principal rates the answer it received and the one erin's editor key got.
    answers: dict[str, str] = {}
    for principal in WRITERS:
        asked = served.client.post("/v1/ask", json={"query": "What is the plan?"}, headers=keys[principal])
        if asked.status_code == 200:
            answers[principal] = asked.json()["answer_id"]
        else:
            assert _outcome(asked) == SCOPE, principal
    for principal, (own, owners) in FEEDBACK_OUTCOMES.items():
        for answer_of, outcome in ((principal, own), ("owner", owners)):
            answer_id = answers.get(answer_of, answers["owner"])
            response = served.client.post(
                "/v1/feedback", json={"answer_id": answer_id, "rating": "up"}, headers=keys[principal]
            )
            assert _outcome(response) == outcome, f"{principal} rates the answer {answer_of} received"
            checked += 1
    # 10 principals x 2 documents x 3 write operations, and 10 principals x 2 answers.
    assert checked == len(WRITERS) * len(WRITTEN) * len(OPERATIONS) + 2 * len(WRITERS) == 80
