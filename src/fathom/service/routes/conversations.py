"""/v1/conversations: multi-turn questions whose follow-ups are answered in context.

A conversation belongs to the key's user (or, for a key without a user, to that key): to
anyone else it is a 404. Messages answer like ``/v1/ask`` (JSON, or server-sent events with
``Accept: text/event-stream``), with the follow-up's standalone rewrite in ``rewrite``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request

from fathom.domain import Answer
from fathom.service.deps import CallerDep, FathomDep, ServiceDep
from fathom.service.errors import request_id_of
from fathom.service.routes.search import SSE_DOC, agent_limits, answer_response
from fathom.service.schemas import (
    ConversationDeletedOut,
    ConversationOut,
    MessageIn,
    MessageOut,
    error_responses,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

ConversationId = Annotated[str, Path(min_length=1, max_length=64, description="From POST /v1/conversations.")]


@router.post(
    "",
    status_code=201,
    response_model=ConversationOut,
    summary="Start a conversation",
    description="Returns its `conversation_id`; ask in it with `POST /v1/conversations/{id}/messages`. "
    "Only the caller (the key's user, or for a key without a user that key) can use it. It is deleted "
    "with its turns after `conversation_retention_days` without a message.",
    responses=error_responses(401, 403, 429, 503),
)
def start(fathom: FathomDep, caller: CallerDep) -> ConversationOut:
    return ConversationOut.of(fathom.start_conversation(principal=caller.principal, key_id=caller.key_id))


@router.get(
    "/{conversation_id}",
    response_model=ConversationOut,
    summary="A conversation's turns with their citations",
    description="Each turn: the question as sent, the standalone question that was answered, the "
    "answer and its citations. A turn whose cited document was deleted, or is no longer readable by "
    "the caller, is shown `redacted` without answer or citations.",
    responses=error_responses(401, 403, 404, 429, 503),
)
def get(conversation_id: ConversationId, fathom: FathomDep, caller: CallerDep) -> ConversationOut:
    conversation = fathom.conversation(conversation_id, principal=caller.principal, key_id=caller.key_id)
    return ConversationOut.of(conversation)


@router.delete(
    "/{conversation_id}",
    response_model=ConversationDeletedOut,
    summary="Delete a conversation and its turns",
    responses=error_responses(401, 403, 404, 429, 503),
)
def delete(conversation_id: ConversationId, fathom: FathomDep, caller: CallerDep) -> ConversationDeletedOut:
    fathom.delete_conversation(conversation_id, principal=caller.principal, key_id=caller.key_id)
    return ConversationDeletedOut(conversation_id=conversation_id)


@router.post(
    "/{conversation_id}/messages",
    response_model=MessageOut,
    summary="Ask the next question of a conversation",
    description="Answers like `POST /v1/ask` (JSON, or server-sent events `delta`, `citations`, `done` "
    "with `Accept: text/event-stream`), after making a follow-up standalone from the conversation "
    "(with the LLM when one is configured, else by carrying the previous question's names or key "
    "terms into it): `rewrite` says how. The answer is stored as the conversation's next turn.",
    responses={**error_responses(400, 401, 403, 404, 413, 422, 429, 503), **SSE_DOC},  # type: ignore[dict-item]
)
def message(
    request: Request,
    conversation_id: ConversationId,
    body: MessageIn,
    service: ServiceDep,
    caller: CallerDep,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    fathom = service.fathom
    fathom.conversation(conversation_id, principal=caller.principal, key_id=caller.key_id)  # 404 first
    service.take_answer_budget(caller.key_id)
    stream = fathom.converse_stream(
        conversation_id,
        body.question,
        principal=caller.principal,
        key_id=caller.key_id,
        k=body.k,
        filters=body.filters,
        mode=body.mode,
        agent_limits=agent_limits(body.agent),
    )

    def respond(answer_id: str, answer: Answer) -> MessageOut:
        data = {"answer_id": answer_id, **answer.to_dict(), "conversation_id": conversation_id}
        return MessageOut.model_validate(data)

    return answer_response(
        service, caller, stream, request_id_of(request), accept, respond, query=body.question
    )
