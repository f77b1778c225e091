"""Security review item 8: one tenant's uploads must not starve every other tenant's ingestion.

Workers take jobs round-robin across tenants (state in the database, so it holds across
processes and on PostgreSQL), per-tenant caps bound running jobs and waiting upload bytes, and
`GET /v1/jobs/{id}` says where a queued job stands. The model plays no part: hash embedder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fathom import Fathom, Principal
from fathom.service import create_app
from fathom.service.worker import JobWorkers
from fathom.store.schema import JobRow
from tests.service.conftest import Served
from tests.service.shared import postgres_schema

BACKLOG = 20


def _queue(fathom: Fathom, tenant: str, count: int) -> list[str]:
    """Queue ``count`` small documents for a tenant; their job ids in order."""
    ids = []
    for i in range(count):
        job, new = fathom.submit_document(
            f"# {tenant} {i}\n\nNotes number {i} of {tenant}.".encode(),
            source=f"{tenant}-{i}.md",
            principal=Principal(tenant=tenant, user="uploader"),
        )
        assert new
        ids.append(job.job_id)
    return ids


def _run_workers(instances: list[Fathom], timeout: float = 90.0) -> None:
    """One real worker thread per instance, until no job is queued or running."""
    pools = [JobWorkers(fathom, threads=1) for fathom in instances]
    for pool in pools:
        pool.start()
    try:
        deadline = time.monotonic() + timeout
        while (counts := instances[0].jobs.counts()).get("queued") or counts.get("running"):
            assert time.monotonic() < deadline, counts
            time.sleep(0.05)
    finally:
        for pool in pools:
            pool.stop()


def _finished_before(fathom: Fathom, backlog: list[str], job_id: str) -> int:
    """How many backlog jobs finished before ``job_id``; every job must have succeeded once."""
    admin = Principal(tenant="a", admin=True)
    jobs = {i: fathom.job(i, principal=admin) for i in backlog}
    single = fathom.job(job_id, principal=Principal(tenant="b", admin=True))
    for job in [*jobs.values(), single]:
        assert job.status == "succeeded" and job.attempts == 1, job
    end = single.finished_at
    assert end is not None
    return sum(1 for job in jobs.values() if job.finished_at is not None and job.finished_at < end)


def _claimed_before(fathom: Fathom, backlog: list[str], job_id: str) -> int:
    """How many backlog jobs were claimed before ``job_id`` (a job's claim time is kept)."""
    with fathom.store.session() as session:
        claimed = {row.id: row.updated_at for row in session.execute(select(JobRow.id, JobRow.updated_at))}
    return sum(1 for i in backlog if claimed[i] < claimed[job_id])


def test_a_tenants_backlog_delays_another_tenants_job_by_at_most_one_job(tmp_path: Path):
    with Fathom(home=tmp_path / "home", embedder="hash:64", parser_workers=1) as fathom:
        backlog = _queue(fathom, "a", BACKLOG)
        (single,) = _queue(fathom, "b", 1)
        _run_workers([fathom])
        # FIFO would finish all 20 of tenant a's jobs first; round-robin takes b's second.
        assert _finished_before(fathom, backlog, single) <= 1


@pytest.mark.integration
def test_round_robin_holds_across_two_processes_on_postgresql(tmp_path: Path):
    with postgres_schema() as url:
        settings: dict[str, Any] = {"embedder": "hash:64", "database_url": url, "parser_workers": 1}
        with (
            Fathom(home=tmp_path / "one", **settings) as one,
            Fathom(home=tmp_path / "two", **settings) as two,
        ):
            backlog = _queue(one, "a", BACKLOG)
            (single,) = _queue(two, "b", 1)
            _run_workers([one, two])
            # Two workers: at most one of a's jobs per worker starts before b's job (FIFO would
            # start all 20); a few more of a's may finish while b's job runs.
            assert _claimed_before(one, backlog, single) <= 2
            assert _finished_before(one, backlog, single) <= 6


def test_a_tenant_at_its_running_cap_is_passed_over(tmp_path: Path):
    with Fathom(home=tmp_path / "home", embedder="hash:64", job_tenant_max_running=1) as fathom:
        _queue(fathom, "a", 3)
        _queue(fathom, "b", 1)
        first, second = fathom.jobs.claim("w1"), fathom.jobs.claim("w2")
        assert first is not None and second is not None
        assert (first.tenant, second.tenant) == ("a", "b")
        fathom.jobs.finish(second.job_id, "w2")
        assert fathom.jobs.claim("w3") is None  # a's two queued jobs wait: a already runs one
        fathom.jobs.finish(first.job_id, "w1")
        third = fathom.jobs.claim("w3")
        assert third is not None and third.tenant == "a"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    """Apps without worker threads: the test plays the worker, so the queue holds still."""
    opened: list[tuple[TestClient, Fathom]] = []

    def start(**settings: Any) -> Served:
        fathom = Fathom(home=tmp_path / f"home{len(opened)}", embedder="hash:64", job_workers=0, **settings)
        client = TestClient(create_app(fathom=fathom), raise_server_exceptions=False)
        client.__enter__()
        opened.append((client, fathom))
        return Served(client, fathom)

    yield start
    for client, fathom in reversed(opened):
        client.__exit__(None, None, None)
        fathom.close()


def _work_one(fathom: Fathom) -> None:
    job = fathom.jobs.claim("test-worker")
    assert job is not None
    fathom.run_job(job)
    fathom.jobs.finish(job.job_id, "test-worker")


def test_a_tenant_over_its_queued_bytes_gets_429_and_others_are_unaffected(served: Any):
    app: Served = served(job_tenant_max_queued_bytes=3000)
    alice, bob = app.key(tenant="a"), app.key(tenant="b", user="bob")
    text = "# Notes\n\n" + "word " * 400  # ~2 KB

    def upload(headers: dict[str, str], body: str, source: str) -> Any:
        return app.client.post("/v1/documents", json={"text": body, "source": source}, headers=headers)

    assert upload(alice, text, "one.md").status_code == 202
    full = upload(alice, text, "two.md")
    assert full.status_code == 429, full.text
    assert full.json()["error"]["code"] == "upload.queue_full"
    assert int(full.headers["retry-after"]) >= 1
    assert upload(bob, text, "one.md").status_code == 202  # a's full queue is a's alone
    alone = upload(bob, text * 2, "big.md")  # larger than the cap by itself: waiting cannot help
    assert alone.status_code == 413 and alone.json()["error"]["code"] == "upload.too_large"
    assert "retry-after" not in alone.headers
    _work_one(app.fathom)  # a's upload is ingested, its bytes leave the queue
    assert upload(alice, text, "two.md").status_code == 202


def test_job_status_shows_position_eta_and_start_without_other_tenants_details(served: Any):
    app: Served = served()
    alice, bob = app.key(tenant="a"), app.key(tenant="b", user="bob")

    def upload(headers: dict[str, str], source: str) -> str:
        body = {"text": f"# {source}\n\nSome notes.", "source": source}
        response = app.client.post("/v1/documents", json=body, headers=headers)
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    def status(job_id: str, headers: dict[str, str]) -> dict[str, Any]:
        response = app.client.get(f"/v1/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    upload(alice, "warmup.md")
    _work_one(app.fathom)  # one finished job, so the ETA has a run time to go by
    a1, a2, a3 = (upload(alice, f"a{i}.md") for i in (1, 2, 3))
    b1 = upload(bob, "b1.md")

    # Round-robin: a1, then b1, then a2 and a3, although b1 was queued last.
    queued = {job: status(job, alice if job != b1 else bob) for job in (a1, a2, a3, b1)}
    assert [queued[job]["position"] for job in (a1, b1, a2, a3)] == [0, 1, 2, 3]
    etas = [queued[job]["eta_seconds"] for job in (a1, b1, a2, a3)]
    assert all(isinstance(eta, float) and eta > 0 for eta in etas) and etas == sorted(etas)
    assert all(job["started_at"] is None for job in queued.values())
    # Bob learns a number, never another tenant's job ids or sources.
    bob_view = app.client.get(f"/v1/jobs/{b1}", headers=bob).text
    assert not any(job in bob_view for job in (a1, a2, a3)) and "a1.md" not in bob_view

    running = app.fathom.jobs.claim("test-worker")
    assert running is not None and running.job_id == a1
    started = status(a1, alice)
    assert started["status"] == "running" and started["started_at"] is not None
    assert started["position"] is None and started["eta_seconds"] is None
    # a runs a job now, so b is next; a's other jobs follow.
    assert [status(job, alice if job != b1 else bob)["position"] for job in (b1, a2, a3)] == [0, 1, 2]

    app.fathom.run_job(running)
    app.fathom.jobs.finish(a1, "test-worker")
    done = status(a1, alice)
    assert done["status"] == "succeeded" and done["finished_at"] is not None
    assert (done["started_at"], done["position"], done["eta_seconds"]) == (None, None, None)
