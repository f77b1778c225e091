"""Webhook deliveries survive `fathom serve` being SIGKILLed: the outbox and the endpoint's
backoff live in the database, so a new process resumes the retries; a process killed while
the receiver was reading an event sends it again with the same event id (at least once)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fathom import Fathom
from tests.service.receiver import Receiver
from tests.service.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENV = {
    "FATHOM_EMBEDDER": "hash:64",
    "FATHOM_LOG_LEVEL": "INFO",
    "FATHOM_WEBHOOK_URL_ALLOW": json.dumps(["127.0.0.1"]),
    "FATHOM_WEBHOOK_RETRY_BASE_SECONDS": "0.3",
    "FATHOM_WEBHOOK_RETRY_MAX_SECONDS": "1",
    "FATHOM_WEBHOOK_TIMEOUT_SECONDS": "1",
}
SECRET = "restart-secret-0123456789"


def _setup(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:
        key, _ = fathom.keys.create(tenant="acme", user="alice", admin=True)
    return home, {"Authorization": f"Bearer {key}"}


def _start(server: ServerProcess, headers: dict[str, str], url: str) -> tuple[str, str]:
    """Register a webhook and upload a document; returns the webhook and document ids."""
    hook = httpx.post(
        f"{server.url}/v1/webhooks",
        json={"url": url, "events": ["job.succeeded"], "secret": SECRET},
        headers=headers,
    )
    assert hook.status_code == 201, hook.text
    accepted = httpx.post(
        f"{server.url}/v1/documents",
        json={"text": "# Herons\n\nHerons stand still in shallow water.", "source": "herons.md"},
        headers=headers,
    )
    assert accepted.status_code == 202, accepted.text
    return hook.json()["webhook_id"], accepted.json()["document_id"]


def _deliveries(server: ServerProcess, headers: dict[str, str], webhook_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/v1/webhooks/{webhook_id}/deliveries", headers=headers)
    return list(response.json()["deliveries"])


def _until(condition: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_a_restart_mid_retry_still_delivers_the_event_once(tmp_path: Path):
    home, headers = _setup(tmp_path)
    receiver = Receiver()  # down: every attempt is refused
    first = ServerProcess(home, ENV).wait_ready()
    try:
        webhook_id, document_id = _start(first, headers, receiver.url)
        (failing,) = _until(
            lambda: [d for d in _deliveries(first, headers, webhook_id) if d["attempts"] >= 2]
        )
        assert failing["status"] == "pending" and failing["last_error"] == "url.unreachable"
    finally:
        first.kill()  # SIGKILL mid-retry: nothing is cleaned up

    receiver.start()
    second = ServerProcess(home, ENV).wait_ready()
    try:
        (only,) = receiver.wait_for(1, timeout=30)
        (done,) = _until(
            lambda: [d for d in _deliveries(second, headers, webhook_id) if d["status"] == "delivered"]
        )
        time.sleep(1.5)
        assert len(receiver.received) == 1, "delivered once"
    finally:
        second.stop()
        receiver.stop()
    assert only.signed_with(SECRET) and only.event["data"]["document_id"] == document_id
    assert done["event_id"] == only.event["id"] and done["attempts"] >= failing["attempts"] + 1
    logs = "".join(log.read_text() for log in tmp_path.glob("serve-*.log"))
    assert "webhook.failed" in logs and "webhook.delivered" in logs
    assert SECRET not in logs, "the secret never reaches the logs"


def test_a_process_killed_while_the_receiver_reads_sends_again_with_the_same_event_id(tmp_path: Path):
    import threading

    home, headers = _setup(tmp_path)
    receiver = Receiver()
    receiver.hang = threading.Event()  # holds the first request open: the process is killed meanwhile
    receiver.start()
    env = {**ENV, "FATHOM_WEBHOOK_TIMEOUT_SECONDS": "4"}  # the attempt is still in flight when killed
    first = ServerProcess(home, env).wait_ready()
    try:
        webhook_id, _document_id = _start(first, headers, receiver.url)
        receiver.wait_for(1, timeout=30)
    finally:
        first.kill()
    receiver.hang.set()
    receiver.hang = None
    # The endpoint's lease (2 x timeout + 5 s) runs out; a new process (short timeout) takes it.
    second = ServerProcess(home, {**ENV, "FATHOM_WEBHOOK_TIMEOUT_SECONDS": "1"}).wait_ready()
    try:
        first_try, second_try = receiver.wait_for(2, timeout=60)
        _until(lambda: [d for d in _deliveries(second, headers, webhook_id) if d["status"] == "delivered"])
    finally:
        second.stop()
        receiver.stop()
    assert first_try.event == second_try.event
    assert first_try.headers["x-fathom-event-id"] == second_try.headers["x-fathom-event-id"]
