"""/v1/usage: a tenant's answers, LLM tokens and cost per user or per day (for charge-back)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from fathom.service.deps import FathomDep, PrincipalDep
from fathom.service.schemas import error_responses
from fathom.store.feedback import UsageTotal

__all__ = ["router"]

router = APIRouter(prefix="/v1/usage", tags=["usage"])

_DEFAULT_DAYS = 30


class UsageRowOut(BaseModel):
    user: str | None = Field(default=None, description="group_by=user: the user (null: keys without a user).")
    day: str | None = Field(default=None, description="group_by=day: the UTC day, YYYY-MM-DD.")
    answers: int = Field(description="Answers given (HTTP, SSE, conversations and MCP).")
    cached: int = Field(description="Of which from the answer cache.")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None = Field(description="USD, for answers by models priced in `llm_prices`.")

    @classmethod
    def of(cls, total: UsageTotal, group_by: str) -> UsageRowOut:
        return cls(
            user=total.key if group_by == "user" else None,
            day=total.key if group_by == "day" else None,
            answers=total.answers,
            cached=total.cached,
            prompt_tokens=total.prompt_tokens,
            completion_tokens=total.completion_tokens,
            total_tokens=total.prompt_tokens + total.completion_tokens,
            cost=total.cost,
        )


class UsageOut(BaseModel):
    since: str = Field(description="The start of the period (UTC, ISO 8601).")
    group_by: Literal["user", "day"]
    rows: list[UsageRowOut]
    total: UsageRowOut = Field(description="All rows together.")


def _since(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC) - timedelta(days=_DEFAULT_DAYS)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@router.get(
    "",
    response_model=UsageOut,
    summary="Answers, LLM tokens and cost per user or per day (tenant admins)",
    description="Every answer the service gave to the caller's tenant since `since` (default: 30 days "
    "ago), over HTTP, SSE, conversations and MCP, with its tokens (query transforms included) and "
    "cost, summed per user (`group_by=user`) or per UTC day (`group_by=day`).",
    responses=error_responses(401, 403, 422, 429, 503),
)
def usage(
    fathom: FathomDep,
    principal: PrincipalDep,
    since: Annotated[
        datetime | None, Query(description="An ISO 8601 time, or a date (YYYY-MM-DD, midnight UTC).")
    ] = None,
    group_by: Annotated[Literal["user", "day"], Query()] = "user",
) -> UsageOut:
    start = _since(since)
    totals = fathom.feedback_log.usage(principal, start, group_by)
    costs = [t.cost for t in totals if t.cost is not None]
    everything = UsageTotal(
        key=None,
        answers=sum(t.answers for t in totals),
        cached=sum(t.cached for t in totals),
        prompt_tokens=sum(t.prompt_tokens for t in totals),
        completion_tokens=sum(t.completion_tokens for t in totals),
        cost=round(sum(costs), 8) if costs else None,
    )
    return UsageOut(
        since=start.isoformat(),
        group_by=group_by,
        rows=[UsageRowOut.of(t, group_by) for t in totals],
        total=UsageRowOut.of(everything, "total"),
    )
