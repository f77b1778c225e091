"""/v1/search and /v1/ask (JSON, or server-sent events with ``Accept: text/event-stream``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from fathom.answer.agent import AgentLimits
from fathom.domain import Answer, AnswerDelta
from fathom.errors import FathomError
from fathom.service.audit import record_answer, record_search, recording_failure
from fathom.service.deps import Caller, CallerDep, Service, ServiceDep
from fathom.service.errors import error_body, request_id_of
from fathom.service.schemas import (
    AgentLimitsIn,
    AskIn,
    AskOut,
    HitOut,
    SearchIn,
    SearchOut,
    error_responses,
)
from fathom.store.outage import database_unavailable, is_unavailable

__all__ = ["SSE_DOC", "agent_limits", "answer_response", "finish_answer", "router"]

router = APIRouter(prefix="/v1", tags=["query"])


@router.post(
    "/search",
    response_model=SearchOut,
    summary="Hybrid search over the documents the caller may read",
    description="BM25 and dense retrieval, filtered by tenant and ACL inside the index query, fused.",
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
def search(body: SearchIn, service: ServiceDep, caller: CallerDep) -> SearchOut:
    with recording_failure(service, caller, "search"):
        hits = service.fathom.search(body.query, k=body.k, filters=body.filters, principal=caller.principal)
    record_search(service, caller, body.query, hits)
    return SearchOut(hits=[HitOut.of(hit) for hit in hits])


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _answer_tokens(answer: Answer) -> int:
    return len(answer.answer.split())


# Builds the response body of an answer from its id (conversations add their own fields).
Respond = Callable[[str, Answer], AskOut]


def finish_answer(
    service: Service, caller: Caller, answer: Answer, respond: Respond = AskOut.of, query: str | None = None
) -> AskOut:
    """Record a final answer (for feedback and, with ``query``, the question, in the audit log),
    charge its tokens to the key, and build its body."""
    answer_id = service.fathom.record_answer(answer, principal=caller.principal, key_id=caller.key_id)
    record_answer(service, caller, query, answer, answer_id)
    service.charge_answer_tokens(caller.key_id, _answer_tokens(answer))
    return respond(answer_id, answer)


def agent_limits(limits: AgentLimitsIn | None) -> AgentLimits | None:
    """The request's agent-mode limits (capped by the settings when applied)."""
    if limits is None:
        return None
    return AgentLimits(limits.max_steps, limits.max_seconds, limits.max_tokens)


def answer_response(
    service: Service,
    caller: Caller,
    stream: Iterator[AnswerDelta | Answer],
    request_id: str,
    accept: str | None,
    respond: Respond = AskOut.of,
    *,
    query: str | None = None,
) -> Any:
    """An answer stream as server-sent events (``Accept: text/event-stream``) or one JSON body;
    the answer (with ``query``, the question) goes to the audit log, a refusal too."""
    with recording_failure(service, caller, "ask"):
        if accept and "text/event-stream" in accept:
            # The first item surfaces refusals (query too long ...) as a plain JSON error response.
            first = next(stream)
            return StreamingResponse(
                _events(service, caller, first, stream, request_id, respond, query),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )
        answer = [item for item in stream if isinstance(item, Answer)][-1]
    return finish_answer(service, caller, answer, respond, query)


def _events(
    service: Service,
    caller: Caller,
    first: AnswerDelta | Answer,
    rest: Iterator[AnswerDelta | Answer],
    request_id: str,
    respond: Respond = AskOut.of,
    query: str | None = None,
) -> Iterator[bytes]:
    item = first
    try:
        while isinstance(item, AnswerDelta):
            yield _sse("delta", {"text": item.text})
            item = next(rest)
        out = finish_answer(service, caller, item, respond, query)
    except Exception as exc:  # the stream has started: errors become an `error` event
        error = exc if isinstance(exc, FathomError) else None
        if error is None and is_unavailable(exc):
            error = database_unavailable()
        if error is None:
            raise
        service.metrics.errors.labels(code=error.code).inc()
        yield _sse("error", error_body(error.code, error.message, request_id))
        return
    yield _sse("citations", {"citations": [c.model_dump() for c in out.citations]})
    yield _sse("done", out.model_dump())


SSE_DOC = {
    "200": {
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": 'event: delta\ndata: {"text": "Keys "}\n\n'
                'event: citations\ndata: {"citations": []}\n\n'
                'event: done\ndata: {"answer_id": "...", "answer": "...", "citations": [], '
                '"abstained": false}\n\n',
            }
        }
    }
}


@router.post(
    "/ask",
    response_model=AskOut,
    summary="Answer from the documents the caller may read, with citations",
    description="JSON by default. With `Accept: text/event-stream` the answer streams as server-sent "
    "events: `delta` (answer text as it is produced), `citations`, then `done` (the full answer, as "
    "the JSON response would be); a failure after the stream started is an `error` event.",
    responses={**error_responses(400, 401, 403, 413, 422, 429, 503), **SSE_DOC},  # type: ignore[dict-item]
)
def ask(
    request: Request,
    body: AskIn,
    service: ServiceDep,
    caller: CallerDep,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    service.take_answer_budget(caller.key_id)
    stream = service.fathom.ask_stream(
        body.query,
        k=body.k,
        filters=body.filters,
        principal=caller.principal,
        mode=body.mode,
        agent_limits=agent_limits(body.agent),
    )
    return answer_response(service, caller, stream, request_id_of(request), accept, query=body.query)
