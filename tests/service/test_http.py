"""The HTTP API's behaviour a client sees: uploads and jobs, idempotency, limits, errors, SSE, ops."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from fathom.service.errors import error_body
from tests.service.conftest import Served

DOC = {"text": "# Otters\n\nSea otters hold hands while they sleep.", "source": "otters.md"}


def _error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["x-request-id"]


def test_json_and_multipart_uploads_become_searchable_through_jobs(serve):
    served: Served = serve()
    alice = served.key(groups=("eng",))
    accepted = served.client.post("/v1/documents", json={**DOC, "metadata": {"team": "ops"}}, headers=alice)
    assert accepted.status_code == 202
    job = served.wait_job(accepted.json()["job_id"], alice)
    assert job["status"] == "succeeded" and job["document_id"] == accepted.json()["document_id"]
    assert job["attempts"] == 1 and job["finished_at"]

    files = {"file": ("notes.txt", b"Beavers build dams from branches and mud.", "text/plain")}
    upload = served.client.post(
        "/v1/documents", files=files, data={"acl": json.dumps({"groups": ["eng"]})}, headers=alice
    )
    assert upload.status_code == 202
    assert served.wait_job(upload.json()["job_id"], alice)["status"] == "succeeded"

    doc = served.client.get(f"/v1/documents/{upload.json()['document_id']}", headers=alice).json()
    assert doc["source"] == "notes.txt" and doc["acl"] == {"users": [], "groups": ["eng"]}
    hits = served.client.post("/v1/search", json={"query": "beavers dams", "k": 3}, headers=alice).json()
    assert hits["hits"][0]["doc_id"] == upload.json()["document_id"]
    filtered = served.client.post(
        "/v1/search", json={"query": "otters", "filters": {"team": "ops"}}, headers=alice
    ).json()
    assert [h["source"] for h in filtered["hits"]] == ["otters.md"]


def test_a_document_that_cannot_be_parsed_fails_its_job_with_a_reason(serve):
    served = serve()
    alice = served.key()
    files = {"file": ("secret.pdf", b"%PDF-1.7\n garbage that is no pdf at all", "application/pdf")}
    accepted = served.client.post("/v1/documents", files=files, headers=alice)
    job = served.wait_job(accepted.json()["job_id"], alice)
    assert job["status"] == "failed" and job["error_code"].startswith("ingest.") and job["reason"]
    _error(served.client.get(f"/v1/documents/{job['document_id']}", headers=alice), 404, "document.not_found")


def test_idempotency_key_replays_the_first_response_and_refuses_a_different_body(serve):
    served = serve()
    alice = served.key()
    headers = {**alice, "Idempotency-Key": "upload-1"}
    first = served.client.post("/v1/documents", json=DOC, headers=headers)
    again = served.client.post("/v1/documents", json=DOC, headers=headers)
    assert again.status_code == 202 and again.json()["job_id"] == first.json()["job_id"]
    assert again.headers["idempotent-replayed"] == "true"
    different = served.client.post("/v1/documents", json={**DOC, "text": "Other text."}, headers=headers)
    _error(different, 409, "idempotency.conflict")
    # Keys are per API key: another key may use the same Idempotency-Key.
    bob = served.key(user="bob")
    other = served.client.post("/v1/documents", json=DOC, headers={**bob, "Idempotency-Key": "upload-1"})
    assert other.status_code == 202 and other.json()["job_id"] != first.json()["job_id"]


def test_keys_are_checked_and_revocation_is_immediate(serve):
    served = serve()
    _error(served.client.get("/v1/documents"), 401, "auth.missing_key")
    _error(
        served.client.get("/v1/documents", headers={"Authorization": "Bearer fth_nope_nope"}),
        401,
        "auth.invalid_key",
    )
    key, info = served.fathom.keys.create(tenant="acme", user="alice")
    assert served.client.get("/v1/documents", headers={"X-API-Key": key}).status_code == 200
    assert served.client.get("/v1/documents", headers={"Authorization": f"Bearer {key}x"}).status_code == 401
    served.fathom.keys.revoke(info.prefix)
    _error(served.client.get("/v1/documents", headers={"X-API-Key": key}), 401, "auth.invalid_key")


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


def test_upload_size_is_enforced_while_the_body_streams(serve):
    served = serve(max_upload_bytes=100_000)
    alice = served.key()
    # No Content-Length: the limit must trip on the bytes as they arrive.
    streamed = served.client.post(
        "/v1/documents",
        content=_chunks(1_000_000),
        headers={**alice, "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    _error(streamed, 413, "upload.too_large")
    declared = served.client.post("/v1/documents", json={"text": "y" * 200_000}, headers=alice)
    _error(declared, 413, "upload.too_large")
    assert served.fathom.jobs.counts() == {}


def test_query_length_and_body_validation_are_422(serve):
    served = serve(max_query_chars=50)
    alice = served.key()
    _error(served.client.post("/v1/search", json={"query": "q" * 51}, headers=alice), 422, "query.too_long")
    _error(served.client.post("/v1/ask", json={"query": "q" * 51}, headers=alice), 422, "query.too_long")
    stream = served.client.post(
        "/v1/ask", json={"query": "q" * 51}, headers={**alice, "Accept": "text/event-stream"}
    )
    _error(stream, 422, "query.too_long")
    _error(served.client.post("/v1/search", json={"k": 3}, headers=alice), 422, "request.invalid")
    _error(
        served.client.post("/v1/search", content=b"{", headers={**alice, "Content-Type": "application/json"}),
        422,
        "request.invalid",
    )
    _error(
        served.client.post("/v1/documents", content=b"text", headers={**alice, "Content-Type": "text/plain"}),
        415,
        "request.unsupported_media_type",
    )


def test_request_rate_limit_is_per_key_with_retry_after(serve):
    served = serve(rate_limit_per_minute=12, rate_limit_burst=3)  # then one request per 5 s
    alice, bob = served.key(), served.key(user="bob")
    statuses = [served.client.get("/v1/documents", headers=alice).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = served.client.get("/v1/documents", headers=alice)
    _error(limited, 429, "rate_limit.requests")
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 5
    assert served.client.get("/v1/documents", headers=bob).status_code == 200
    time.sleep(retry_after + 0.2)
    assert served.client.get("/v1/documents", headers=alice).status_code == 200


def test_answer_tokens_are_rate_limited_per_key(serve):
    served = serve(answer_tokens_per_minute=6)
    alice = served.key()
    served.upload(alice, **DOC)
    first = served.client.post(
        "/v1/ask", json={"query": "what do sea otters hold while they sleep"}, headers=alice
    )
    assert first.status_code == 200 and not first.json()["abstained"]
    # The answer used more than the minute's six tokens: the next ask waits for the debt.
    second = served.client.post("/v1/ask", json={"query": "otters"}, headers=alice)
    _error(second, 429, "rate_limit.answer_tokens")
    assert int(second.headers["retry-after"]) >= 10
    assert served.client.post("/v1/search", json={"query": "otters"}, headers=alice).status_code == 200


def test_ask_streams_deltas_then_citations_then_the_final_answer(serve):
    served = serve()
    alice = served.key()
    served.upload(alice, **DOC)
    plain = served.client.post("/v1/ask", json={"query": "what do sea otters hold"}, headers=alice).json()
    with served.client.stream(
        "POST",
        "/v1/ask",
        json={"query": "what do sea otters hold"},
        headers={**alice, "Accept": "text/event-stream"},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"]
        events = []
        for block in response.read().decode().split("\n\n"):
            if block.strip():
                name, data = block.split("\n", 1)
                events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    names = [name for name, _ in events]
    assert names[-2:] == ["citations", "done"] and names.count("delta") >= 2
    done = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "delta") == done["answer"]
    assert done["answer"] == plain["answer"] and done["citations"] == events[-2][1]["citations"]
    assert done["answer_id"] != plain["answer_id"]
    feedback = served.client.post(
        "/v1/feedback",
        json={"answer_id": done["answer_id"], "rating": "down", "comment": "meh"},
        headers=alice,
    )
    assert feedback.status_code == 201


def test_every_error_has_one_shape_and_every_response_a_request_id(serve):
    served = serve()
    alice = served.key()
    cases = [
        (served.client.get("/v1/nowhere", headers=alice), 404, "route.not_found"),
        (served.client.put("/v1/search", headers=alice), 405, "method.not_allowed"),
        (served.client.get("/v1/jobs/nope", headers=alice), 404, "job.not_found"),
        (served.client.get("/v1/documents/nope", headers=alice), 404, "document.not_found"),
        (served.client.delete("/v1/documents/nope", headers=alice), 404, "document.not_found"),
        (
            served.client.post("/v1/feedback", json={"answer_id": "x", "rating": "up"}, headers=alice),
            404,
            "answer.not_found",
        ),
        (
            served.client.post("/v1/feedback", json={"answer_id": "x", "rating": "meh"}, headers=alice),
            422,
            "request.invalid",
        ),
        (served.client.post("/v1/search", json={"query": "  "}, headers=alice), 422, "query.empty"),
        (served.client.post("/v1/search", json={"query": "x"}), 401, "auth.missing_key"),
    ]
    for response, status, code in cases:
        _error(response, status, code)
    assert served.client.get("/healthz").headers["x-request-id"]
    echoed = served.client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    assert error_body("c", "m", "r") == {"error": {"code": "c", "message": "m", "request_id": "r"}}


def test_health_readiness_and_metrics(serve):
    served = serve()
    alice = served.key()
    served.upload(alice, **DOC)
    served.client.post("/v1/search", json={"query": "otters"}, headers=alice)
    served.client.get("/v1/documents/nope", headers=alice)
    assert served.client.get("/healthz").json() == {"status": "ok"}
    assert served.client.get("/readyz").json() == {"status": "ready", "checks": {"database": True}}
    metrics = served.client.get("/metrics").text
    assert (
        'fathom_http_request_duration_seconds_count{method="POST",route="/v1/search",status="200"} 1.0'
        in metrics
    )
    assert 'fathom_stage_duration_seconds_count{stage="lexical"}' in metrics
    assert 'fathom_errors_total{code="document.not_found"} 1.0' in metrics
    assert 'fathom_jobs_finished_total{status="succeeded"} 1.0' in metrics
    assert 'fathom_jobs_in_store{status="succeeded"} 1.0' in metrics


def test_logs_carry_the_request_id_and_never_the_key_or_the_text(serve, capsys):
    served = serve(log_level="INFO", log_json=True)
    key, _ = served.fathom.keys.create(tenant="acme", user="alice")
    headers = {"Authorization": f"Bearer {key}", "X-Request-ID": "req-42"}
    secret = "# Plans\n\nThe password is hunter2 and the launch is on friday."
    served.upload(headers, text=secret, source="plans.md")
    served.client.post("/v1/ask", json={"query": "when is the launch hunter2"}, headers=headers)
    logged = capsys.readouterr().err
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["event"] == "http.request"]
    assert access and all(line["request_id"] == "req-42" for line in access)
    assert {line["route"] for line in access} >= {"/v1/documents", "/v1/ask", "/v1/jobs/{job_id}"}
    assert key not in logged and key.split("_", 2)[2] not in logged  # the secret part (it may hold "_")
    assert "hunter2" not in logged and "launch" not in logged
