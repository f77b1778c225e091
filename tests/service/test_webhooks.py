"""Webhooks against a real receiver on loopback: signed events, retries with backoff while the
receiver is down, dead letters past the horizon, a hanging receiver, and the SSRF guard.

The restart case (a `fathom serve` process killed mid-retry) is in test_webhook_restart.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fathom import Fathom
from fathom.domain import Principal, TextDocument
from fathom.errors import NotFound
from fathom.webhooks import DeliveryWorkers
from tests.service.conftest import Served
from tests.service.receiver import Receiver
from tests.service.shared import postgres_schema

FAST = {
    "webhook_url_allow": ["127.0.0.1"],
    "webhook_retry_base_seconds": 0.2,
    "webhook_retry_max_seconds": 0.5,
    "webhook_timeout_seconds": 2.0,
}
SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.release()
    started.stop()


def _register(served: Served, admin: dict[str, str], url: str, events: list[str], **extra: Any) -> str:
    body = {"url": url, "events": events, "secret": SECRET, **extra}
    response = served.client.post("/v1/webhooks", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["webhook_id"])


def _deliveries(
    served: Served, admin: dict[str, str], webhook_id: str, **params: str
) -> list[dict[str, Any]]:
    response = served.client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=admin, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["deliveries"])


def _wait(condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_events_are_signed_with_the_secret_and_carry_an_id_and_timestamp(serve, receiver):
    served: Served = serve(**FAST)
    admin = served.key(admin=True)
    webhook_id = _register(served, admin, receiver.url, ["job.succeeded", "document.deleted"])

    doc = served.upload(admin, text="# Otters\n\nSea otters hold hands.", source="otters.md")
    assert served.client.delete(f"/v1/documents/{doc['document_id']}", headers=admin).status_code == 200
    first, second = receiver.wait_for(2)

    assert all(r.signed_with(SECRET) for r in (first, second))
    assert not first.signed_with(SECRET + "x")
    succeeded, deleted = first.event, second.event
    assert succeeded["type"] == "job.succeeded" and deleted["type"] == "document.deleted"
    assert succeeded["data"]["job_id"] == doc["job_id"]
    assert succeeded["data"]["document_id"] == deleted["data"]["document_id"] == doc["document_id"]
    assert succeeded["tenant"] == "acme" and succeeded["created_at"].endswith("Z")
    assert first.headers["x-fathom-event-id"] == succeeded["id"] != deleted["id"]
    assert first.headers["x-fathom-event"] == "job.succeeded"
    assert first.headers["content-type"] == "application/json"
    listed = _wait(lambda: [d for d in _deliveries(served, admin, webhook_id) if d["status"] == "delivered"])
    assert {d["event_id"] for d in listed} <= {succeeded["id"], deleted["id"]}


def test_only_subscribed_events_of_the_own_tenant_are_sent(serve, receiver):
    served: Served = serve(**FAST)
    admin = served.key(admin=True)
    other = served.key(tenant="globex", admin=True)
    _register(served, admin, receiver.url, ["document.deleted"])
    doc = served.upload(admin, text="# Kept\n\nThis one stays a while.", source="kept.md")
    foreign = served.upload(other, text="# Other\n\nAnother tenant's text.", source="other.md")
    served.client.delete(f"/v1/documents/{foreign['document_id']}", headers=other)
    served.client.delete(f"/v1/documents/{doc['document_id']}", headers=admin)
    received = receiver.wait_for(1)
    time.sleep(1.5)  # two polls: nothing else arrives
    assert [r.event["type"] for r in receiver.received] == ["document.deleted"]
    assert received[0].event["data"]["document_id"] == doc["document_id"]


def test_a_receiver_down_for_a_while_gets_each_event_once_when_it_is_back(serve):
    served: Served = serve(**FAST)
    admin = served.key(admin=True)
    receiver = Receiver()  # not listening yet: connections are refused
    webhook_id = _register(served, admin, receiver.url, ["job.succeeded"])
    doc = served.upload(admin, text="# Beavers\n\nBeavers build dams.", source="beavers.md")

    failing = _wait(lambda: [d for d in _deliveries(served, admin, webhook_id) if d["attempts"] >= 3])
    assert failing[0]["status"] == "pending" and failing[0]["last_error"] == "url.unreachable"
    assert failing[0]["next_attempt_at"] is not None
    endpoint = served.client.get(f"/v1/webhooks/{webhook_id}", headers=admin).json()
    assert endpoint["failures"] >= 3 and endpoint["pending"] == 1

    receiver.start()
    try:
        (only,) = receiver.wait_for(1)
        time.sleep(1.5)  # later polls send nothing more
        assert len(receiver.received) == 1 and only.signed_with(SECRET)
        assert only.event["data"]["document_id"] == doc["document_id"]
        (done,) = _wait(lambda: _deliveries(served, admin, webhook_id, status="delivered"))
        assert done["event_id"] == only.event["id"] and done["attempts"] >= 4
        healthy = served.client.get(f"/v1/webhooks/{webhook_id}", headers=admin).json()
        assert healthy["failures"] == 0 and healthy["pending"] == 0
    finally:
        receiver.stop()


def test_a_delivery_failing_past_the_horizon_is_dead_lettered(serve):
    served: Served = serve(**{**FAST, "webhook_retry_horizon_seconds": 0.8})
    admin = served.key(admin=True)
    receiver = Receiver(status=500).start()
    try:
        webhook_id = _register(served, admin, receiver.url, ["job.succeeded"])
        served.upload(admin, text="# Moles\n\nMoles dig tunnels.", source="moles.md")
        (dead,) = _wait(lambda: _deliveries(served, admin, webhook_id, status="dead"))
        attempts = len(receiver.received)
        time.sleep(1.0)
        assert len(receiver.received) == attempts >= 2, "a dead letter is not retried"
        assert dead["last_status"] == 500 and dead["last_error"] == "http.500" and dead["attempts"] >= 2
        assert served.client.get(f"/v1/webhooks/{webhook_id}", headers=admin).json()["dead"] == 1
        assert "fathom_webhook_deliveries_total" in served.client.get("/metrics").text
    finally:
        receiver.stop()


def test_a_hanging_receiver_times_out_and_holds_up_no_other_endpoint(serve):
    served: Served = serve(**{**FAST, "webhook_timeout_seconds": 0.5, "webhook_workers": 2})
    admin = served.key(admin=True)
    hanging, healthy = Receiver(), Receiver()
    hanging.hang = threading.Event()
    hanging.start()
    healthy.start()
    try:
        stuck = _register(served, admin, hanging.url, ["job.succeeded"])
        _register(served, admin, healthy.url, ["job.succeeded"])
        for n in range(4):
            served.upload(admin, text=f"# Note {n}\n\nNumber {n} of four.", source=f"n{n}.md")
        healthy.wait_for(4, timeout=10)
        # The hanging endpoint holds at most one worker, one attempt at a time, each cut at 0.5 s.
        timed_out = _wait(
            lambda: [d for d in _deliveries(served, admin, stuck) if d["last_error"] == "url.timeout"]
        )
        assert timed_out[0]["status"] == "pending"
        ping = time.monotonic()
        assert served.client.get("/healthz").status_code == 200 and time.monotonic() - ping < 1
        # One attempt at a time, each cut at 0.5 s, all for its oldest event: the other three wait
        # their turn instead of taking more workers.
        assert len({r.event["id"] for r in hanging.received}) == 1

        hanging.release()
        hanging.hang = None
        _wait(lambda: len(_deliveries(served, admin, stuck, status="delivered")) == 4)
    finally:
        hanging.release()
        hanging.stop()
        healthy.stop()


def test_webhooks_are_for_tenant_admins_and_secrets_are_never_shown(serve, receiver):
    served: Served = serve(**FAST)
    admin = served.key(admin=True)
    reader = served.key(user="bob")
    body = {"url": receiver.url, "events": ["job.failed"]}
    assert served.client.post("/v1/webhooks", json=body, headers=reader).status_code == 403
    assert served.client.get("/v1/webhooks", headers=reader).json()["error"]["code"] == "webhook.admin_only"

    created = served.client.post("/v1/webhooks", json=body, headers=admin).json()
    generated = created["secret"]
    assert generated and len(generated) >= 32  # shown once, because fathom made it
    given = served.client.post("/v1/webhooks", json={**body, "secret": SECRET}, headers=admin).json()
    assert given["secret"] is None
    listed = served.client.get("/v1/webhooks", headers=admin)
    one = served.client.get(f"/v1/webhooks/{given['webhook_id']}", headers=admin)
    for text in (listed.text, one.text):
        assert generated not in text and SECRET not in text
    assert {w["webhook_id"] for w in listed.json()["webhooks"]} == {
        created["webhook_id"],
        given["webhook_id"],
    }

    other = served.key(tenant="globex", admin=True)
    assert served.client.get(f"/v1/webhooks/{given['webhook_id']}", headers=other).status_code == 404
    assert served.client.delete(f"/v1/webhooks/{given['webhook_id']}", headers=other).status_code == 404
    assert served.client.delete(f"/v1/webhooks/{given['webhook_id']}", headers=admin).status_code == 200
    assert served.client.get(f"/v1/webhooks/{given['webhook_id']}", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:9/hook", "url.blocked_address"),
        ("http://[::1]:9/hook", "url.blocked_address"),
        ("http://169.254.169.254/latest/meta-data", "url.blocked_address"),
        ("http://10.1.2.3/hook", "url.blocked_address"),
        ("ftp://example.com/hook", "url.scheme_not_allowed"),
        ("http:///nohost", "url.invalid"),
    ],
)
def test_webhook_urls_pass_the_url_ingest_ssrf_guard(serve, url, code):
    served: Served = serve()  # loopback not allowed
    admin = served.key(admin=True)
    response = served.client.post("/v1/webhooks", json={"url": url, "events": ["job.failed"]}, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code


def test_each_attempt_is_checked_again_so_an_allowance_withdrawn_later_blocks_delivery(tmp_path, receiver):

    with Fathom(home=tmp_path / "h", embedder="hash:64", **FAST) as fathom:
        admin = Principal(tenant="default", admin=True)
        webhook, _ = fathom.webhooks.create(admin, receiver.url, ["document.deleted"], SECRET)
        fathom.ingest_texts([_text("# Gone\n\nSoon deleted.", "gone.md")])
        fathom.delete("gone.md")
        # The same store served by a process whose settings no longer allow loopback.
        strict = fathom.settings.model_copy(update={"webhook_url_allow": []})
        workers = DeliveryWorkers(strict, fathom.webhooks.store)
        workers.start()
        try:
            blocked = _wait(
                lambda: [
                    d
                    for d in fathom.webhooks.store.deliveries("default", webhook.webhook_id)
                    if d.last_error == "url.blocked_address"
                ]
            )
        finally:
            workers.stop()
        assert blocked[0].status == "pending" and receiver.received == []


def test_the_event_is_written_with_the_change_it_reports(tmp_path):
    """No delivery worker runs: the outbox row exists because the delete committed."""

    with Fathom(home=tmp_path / "h", embedder="hash:64", webhook_url_allow=["127.0.0.1"]) as fathom:
        admin = Principal(tenant="default", admin=True)
        webhook, _ = fathom.webhooks.create(admin, "http://127.0.0.1:9/x", ["document.deleted"], SECRET)
        fathom.ingest_texts([_text("# Gone\n\nSoon deleted.", "gone.md")])
        doc_id = fathom.delete("gone.md")
        with pytest.raises(NotFound):
            fathom.delete("gone.md")  # nothing deleted, no event
        (pending,) = fathom.webhooks.store.deliveries("default", webhook.webhook_id)
    assert pending.status == "pending" and pending.event_type == "document.deleted" and pending.attempts == 0
    assert doc_id


def _text(text: str, source: str) -> TextDocument:
    return TextDocument(text=text, source=source)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


# The database fixture comes first, so the app stops before its schema is dropped.
@pytest.mark.integration
def test_webhooks_on_postgresql(postgres_url, serve):
    served: Served = serve(database_url=postgres_url, **{**FAST, "webhook_retry_horizon_seconds": 0.8})
    admin = served.key(admin=True)
    receiver = Receiver(status=503).start()
    try:
        webhook_id = _register(served, admin, receiver.url, ["job.succeeded", "document.deleted"])
        doc = served.upload(admin, text="# Voles\n\nVoles eat roots.", source="voles.md")
        (dead,) = _wait(lambda: _deliveries(served, admin, webhook_id, status="dead"))
        assert dead["event_type"] == "job.succeeded" and dead["last_error"] == "http.503"
        receiver.status = 200
        served.client.delete(f"/v1/documents/{doc['document_id']}", headers=admin)
        (done,) = _wait(lambda: _deliveries(served, admin, webhook_id, status="delivered"))
        assert done["event_type"] == "document.deleted"
        assert receiver.received[-1].signed_with(SECRET)
    finally:
        receiver.stop()
