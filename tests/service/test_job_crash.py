"""SIGKILL a serving process in the middle of an ingestion job, then restart it.

The job must be retried (or failed, once out of attempts), never lost, and the document must
never be seen half-written. The model plays no part here, so the servers use the hash embedder.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import pytest

from fathom import Fathom
from fathom.store.schema import ChunkRow, DocumentRow, JobRow
from tests.service.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ENV = {"FATHOM_EMBEDDER": "hash:64", "FATHOM_JOB_LEASE_SECONDS": "1.5", "FATHOM_LOG_LEVEL": "WARNING"}


def _big_document() -> str:
    rng = random.Random(7)
    words = [
        "harbour",
        "lantern",
        "meadow",
        "quartz",
        "ember",
        "falcon",
        "willow",
        "cobalt",
        "summit",
        "river",
        "orchard",
        "tide",
    ]
    sections = [
        f"## Part {i}\n\n" + " ".join(rng.choice(words) for _ in range(300)) + "." for i in range(500)
    ]
    return "# Field notes\n\n" + "\n\n".join(sections)


def _setup(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:
        key, _ = fathom.keys.create(tenant="acme", user="alice", admin=True)
    return home, {"Authorization": f"Bearer {key}"}


def _kill_mid_job(server: ServerProcess, headers: dict[str, str], text: str) -> dict[str, str]:
    accepted = httpx.post(
        f"{server.url}/v1/documents", json={"text": text, "source": "notes.md"}, headers=headers, timeout=30
    ).json()
    deadline = time.monotonic() + 30
    while (
        httpx.get(f"{server.url}/v1/jobs/{accepted['job_id']}", headers=headers).json()["status"] != "running"
    ):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.02)
    time.sleep(0.3)  # well inside parsing/chunking/embedding of a ~1 MB document
    server.kill()
    return accepted


def _state(home: Path, accepted: dict[str, str]) -> tuple[JobRow, DocumentRow | None, int]:
    with Fathom(home=home, embedder="hash:64") as fathom, fathom.store.session() as session:
        job = session.get(JobRow, accepted["job_id"])
        doc = session.get(DocumentRow, accepted["document_id"])
        chunks = session.query(ChunkRow).filter(ChunkRow.doc_id == accepted["document_id"]).count()
        assert job is not None
        session.expunge_all()
        return job, doc, chunks


def _wait_done(server: ServerProcess, headers: dict[str, str], job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 90
    while True:
        job = httpx.get(f"{server.url}/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_a_job_killed_mid_way_is_retried_after_restart_and_the_document_is_whole(tmp_path: Path):
    home, headers = _setup(tmp_path)
    text = _big_document()
    accepted = _kill_mid_job(ServerProcess(home, ENV).wait_ready(), headers, text)

    job, doc, chunks = _state(home, accepted)
    assert job.status == "running" and job.attempts == 1
    assert doc is None and chunks == 0, "a killed job left a partial document"

    server = ServerProcess(home, ENV).wait_ready()
    try:
        done = _wait_done(server, headers, accepted["job_id"])
        assert done["status"] == "succeeded" and done["attempts"] == 2
        listed = httpx.get(f"{server.url}/v1/documents/{accepted['document_id']}", headers=headers).json()
        hits = httpx.post(f"{server.url}/v1/search", json={"query": "field notes"}, headers=headers).json()
    finally:
        server.stop()
    job, doc, chunks = _state(home, accepted)
    assert doc is not None and doc.text.startswith("# Field notes") and listed["chunks"] == chunks > 100
    assert {hit["doc_id"] for hit in hits["hits"]} == {accepted["document_id"]}
    assert job.content == b""  # the upload is dropped once the document is committed


def test_a_job_whose_worker_keeps_dying_fails_cleanly(tmp_path: Path):
    home, headers = _setup(tmp_path)
    env = {**ENV, "FATHOM_JOB_MAX_ATTEMPTS": "1"}
    accepted = _kill_mid_job(ServerProcess(home, env).wait_ready(), headers, _big_document())
    server = ServerProcess(home, env).wait_ready()
    try:
        done = _wait_done(server, headers, accepted["job_id"])
        missing = httpx.get(f"{server.url}/v1/documents/{accepted['document_id']}", headers=headers)
    finally:
        server.stop()
    assert done["status"] == "failed" and done["error_code"] == "job.worker_lost" and done["reason"]
    assert missing.status_code == 404
    _job, doc, chunks = _state(home, accepted)
    assert doc is None and chunks == 0
