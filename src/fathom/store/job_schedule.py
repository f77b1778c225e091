"""Which tenant's job a worker takes next, and where a queued job stands.

Workers share tenants round-robin: a claim goes to the tenant with the fewest jobs running,
then to the one served least recently (a tenant never served while it had jobs waiting goes
first), and takes that tenant's oldest job. Everything is read from the jobs table, so every
worker in every process makes the same choice, on SQLite and PostgreSQL alike, without a
schema change:

- a running job's ``updated_at`` is when it was claimed;
- when a claim takes a tenant's job, the tenant's newest queued job gets ``updated_at`` = the
  claim time, so the tenant's "last served" time outlives the job that was claimed (a queued
  job whose ``updated_at`` is later than its ``created_at`` carries such a mark);
- finishing a job leaves ``updated_at`` (the start of its last attempt), so
  ``finished_at - updated_at`` is how long it ran: the ETA of queued jobs comes from that.

A tenant's "last served" time is therefore the latest mark among its queued and running jobs;
it is forgotten once the tenant has nothing queued or running, which is right: a tenant that
waits for nothing has nothing to be fair about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from fathom.store.schema import JobRow

__all__ = [
    "TenantQueue",
    "claimable",
    "estimated_position",
    "recent_run_seconds",
    "tenant_queues",
]

# Finished jobs whose run times make the ETA estimate.
RECENT_JOBS = 50


def claimable(now: float) -> Any:
    """Jobs a worker may take: queued, or running under a lease that ran out (a dead worker)."""
    return or_(JobRow.status == "queued", and_(JobRow.status == "running", JobRow.lease_until < now))


def _live(now: float) -> Any:
    return and_(JobRow.status == "running", JobRow.lease_until >= now)


@dataclass(frozen=True, slots=True)
class TenantQueue:
    """One tenant's share of the queue at one moment."""

    tenant: str
    waiting: int
    running: int
    served_at: datetime | None
    oldest: datetime

    def order(self) -> tuple[int, int, datetime, datetime, str]:
        """Sort key of the round-robin: fewest running, least recently served, oldest job."""
        if self.served_at is None:
            return (self.running, 0, self.oldest, self.oldest, self.tenant)
        return (self.running, 1, self.served_at, self.oldest, self.tenant)


def tenant_queues(session: Session, now: float) -> list[TenantQueue]:
    """Tenants with jobs waiting, in the order the round-robin serves them."""
    waiting = claimable(now)
    rows = session.execute(
        select(
            JobRow.tenant_id,
            func.sum(case((waiting, 1), else_=0)),
            func.sum(case((_live(now), 1), else_=0)),
            func.max(case((JobRow.updated_at > JobRow.created_at, JobRow.updated_at), else_=None)),
            func.min(case((waiting, JobRow.created_at), else_=None)),
        )
        .where(JobRow.status.in_(("queued", "running")))
        .group_by(JobRow.tenant_id)
    ).all()
    queues = [
        TenantQueue(
            tenant=str(tenant),
            waiting=int(n_waiting or 0),
            running=int(n_running or 0),
            served_at=served_at,
            oldest=oldest,
        )
        for tenant, n_waiting, n_running, served_at, oldest in rows
        if n_waiting
    ]
    return sorted(queues, key=TenantQueue.order)


def estimated_position(session: Session, row: JobRow, now: float) -> int:
    """How many jobs will be claimed before a queued job, if every tenant is served in turn.

    The job is its tenant's k-th waiting job, so it is taken in the tenant's (k+1)-th turn;
    before that, every other tenant gets up to k turns, plus one more if it comes first in
    the current order. Jobs queued later by a tenant served earlier in a round can still come
    first, so this is an estimate, as is any estimate of a queue that keeps changing.
    """
    earlier = session.scalar(
        select(func.count(JobRow.id)).where(
            JobRow.tenant_id == row.tenant_id,
            claimable(now),
            or_(
                JobRow.created_at < row.created_at,
                and_(JobRow.created_at == row.created_at, JobRow.id < row.id),
            ),
        )
    )
    turns = int(earlier or 0)
    position = turns
    ahead = True
    for queue in tenant_queues(session, now):
        if queue.tenant == row.tenant_id:
            ahead = False
            continue
        position += min(queue.waiting, turns + (1 if ahead else 0))
    return position


def recent_run_seconds(session: Session) -> float | None:
    """The mean run time of the most recent finished jobs, or None before any has finished.

    A job failed because its workers kept dying (``job.worker_lost``) never ran to the end
    and is left out.
    """
    samples: list[tuple[datetime, float]] = []
    for status in ("succeeded", "failed"):
        rows = session.execute(
            select(JobRow.updated_at, JobRow.finished_at)
            .where(
                JobRow.status == status,
                or_(JobRow.error_code.is_(None), JobRow.error_code != "job.worker_lost"),
            )
            .order_by(JobRow.created_at.desc())
            .limit(RECENT_JOBS)
        ).all()
        for started, finished in rows:
            if finished is not None and finished > started:
                samples.append((finished, (finished - started).total_seconds()))
    if not samples:
        return None
    samples.sort(reverse=True)
    recent = [seconds for _finished, seconds in samples[:RECENT_JOBS]]
    return sum(recent) / len(recent)
