"""The job queue between workers: one claim wins, leases expire, a lost lease cannot finish a job."""

from __future__ import annotations

import threading
import time

import pytest

from fathom import Fathom, NotFound, Principal

ADMIN = Principal(tenant="acme", admin=True)


def _submit(fathom: Fathom, source: str = "a.md") -> str:
    job, new = fathom.submit_document(
        b"# A\n\nSome text.", source=source, principal=Principal(tenant="acme", user="alice")
    )
    assert new and job.status == "queued"
    return job.job_id


def test_concurrent_claims_give_a_job_to_exactly_one_worker(hash_fathom: Fathom):
    ids = {_submit(hash_fathom, f"doc{i}.md") for i in range(5)}
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := hash_fathom.jobs.claim(name)) is not None:
            with lock:
                claimed.append(job.job_id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(ids)


def test_an_expired_lease_moves_the_job_and_the_old_worker_cannot_finish_it(tmp_path):
    with Fathom(
        home=tmp_path / "home", embedder="hash:64", job_lease_seconds=0.2, job_max_attempts=2
    ) as fathom:
        job_id = _submit(fathom)
        first = fathom.jobs.claim("w1")
        assert first is not None and first.attempt == 1
        assert fathom.jobs.claim("w2") is None  # leased
        assert fathom.jobs.renew(job_id, "w1")
        time.sleep(0.3)
        second = fathom.jobs.claim("w2")
        assert second is not None and second.job_id == job_id and second.attempt == 2
        assert not fathom.jobs.renew(job_id, "w1")
        fathom.jobs.finish(job_id, "w1", error_code="x", reason="stale worker")
        assert fathom.job(job_id, principal=ADMIN).status == "running"
        fathom.jobs.finish(job_id, "w2")
        assert fathom.job(job_id, principal=ADMIN).status == "succeeded"


def test_a_job_out_of_attempts_fails_and_a_released_job_keeps_its_attempts(tmp_path):
    with Fathom(
        home=tmp_path / "home", embedder="hash:64", job_lease_seconds=0.1, job_max_attempts=1
    ) as fathom:
        job_id = _submit(fathom)
        assert fathom.jobs.claim("w1") is not None
        time.sleep(0.2)
        assert fathom.jobs.claim("w2") is None
        failed = fathom.job(job_id, principal=ADMIN)
        assert failed.status == "failed" and failed.error_code == "job.worker_lost"

        other = _submit(fathom, "b.md")
        assert fathom.jobs.claim("w1") is not None
        fathom.jobs.release(other, "w1")
        again = fathom.jobs.claim("w2")
        assert again is not None and again.attempt == 1


def test_jobs_are_visible_to_their_submitter_readers_and_admins_only(hash_fathom: Fathom):
    job, _ = hash_fathom.submit_document(
        b"text", source="s.md", acl_users=["carol"], principal=Principal(tenant="acme", user="alice")
    )
    assert hash_fathom.job(job.job_id, principal=Principal(tenant="acme", user="alice")).job_id == job.job_id
    assert hash_fathom.job(job.job_id, principal=Principal(tenant="acme", user="carol")).job_id == job.job_id
    assert hash_fathom.job(job.job_id, principal=Principal(tenant="acme", admin=True)).job_id == job.job_id
    for outsider in (
        Principal(tenant="acme", user="bob"),
        Principal(tenant="other", user="alice", admin=True),
    ):
        with pytest.raises(NotFound):
            hash_fathom.job(job.job_id, principal=outsider)
