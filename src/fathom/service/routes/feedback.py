"""/v1/feedback: rate an answer."""

from __future__ import annotations

from fastapi import APIRouter

from fathom.service.deps import CallerDep, FathomDep
from fathom.service.schemas import FeedbackIn, FeedbackOut, error_responses

__all__ = ["router"]

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


@router.post(
    "",
    status_code=201,
    response_model=FeedbackOut,
    summary="Rate an answer you received",
    description="`answer_id` comes from `POST /v1/ask` (or the MCP `ask` tool). Only whoever received "
    "the answer can rate it: the key's user (through any of that user's keys), for a key without a user "
    "only that same key, or an admin of its tenant; anyone else gets a 404.",
    responses=error_responses(400, 401, 403, 404, 413, 422, 429),
)
def add_feedback(body: FeedbackIn, fathom: FathomDep, caller: CallerDep) -> FeedbackOut:
    feedback_id = fathom.add_feedback(
        body.answer_id, body.rating, body.comment, principal=caller.principal, key_id=caller.key_id
    )
    return FeedbackOut(feedback_id=feedback_id)
