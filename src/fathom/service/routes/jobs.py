"""/v1/jobs: the state of an ingestion job."""

from __future__ import annotations

from fastapi import APIRouter

from fathom.service.deps import FathomDep, PrincipalDep
from fathom.service.schemas import JobOut, error_responses

__all__ = ["router"]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get(
    "/{job_id}",
    response_model=JobOut,
    summary="An ingestion job: queued, running, succeeded, or failed with a reason",
    description="Visible to the key's user who submitted it, to admins, and to readers of its document. "
    "Workers take jobs round-robin across tenants. A queued job carries `position` (jobs expected "
    "to start before it) and `eta_seconds` (mean run time of the last 50 finished jobs times "
    "(position / jobs running now + 1); null before any job has finished); a running job carries "
    "`started_at`. Other tenants' jobs appear only as part of the position count.",
    responses=error_responses(401, 403, 404, 429),
)
def get_job(job_id: str, fathom: FathomDep, principal: PrincipalDep) -> JobOut:
    return JobOut.of(fathom.job(job_id, principal=principal))
