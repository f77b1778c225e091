"""The permission matrix: every principal calls every endpoint about every document.

Two tenants; users with and without groups; the same user and group names in both tenants;
documents readable by the whole tenant, by one user, by one group, and by a user or a group.
Each document carries a secret marker in its source, title and text. Whatever the endpoint, a
principal that may not read a document never sees its marker, and gets a 404 where it names
the document; a principal that may read it finds it. The expected access is written out by
hand below, not computed by fathom's own rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.service.conftest import Served

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
