"""OpenAI-compatible routes: ``GET /v1/models`` and ``POST /v1/chat/completions``.

An application written for OpenAI's Chat Completions API points its client at
``http://HOST:PORT/v1`` with a fathom API key and gets fathom's answers: the last user message
is the question, earlier user and assistant messages are the conversation it follows (made
standalone like a conversation's follow-up, :meth:`fathom.Fathom.ask_after_stream`; nothing is
stored), and the reply is the verified answer with its ``[n]`` markers followed by its numbered
sources. The full answer (citations with document ids, pages and quotes) is in the ``fathom``
extension field. Keys, rate limits, answer-token budgets, tenants and ACLs are those of
``/v1/ask``; errors come in OpenAI's envelope with fathom's stable ``code``.

Streaming sends OpenAI's ``chat.completion.chunk`` events and ends with ``data: [DONE]``. The
content streamed is the verified answer: a client cannot take back text it has shown, so
sentences that verification would remove are never sent.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from fathom.answer.pipeline import AskMode
from fathom.domain import Answer, AnswerDelta, Citation
from fathom.errors import FathomError, InvalidQuery, NotFound
from fathom.service.audit import recording_failure
from fathom.service.deps import Caller, CallerDep, Service, ServiceDep
from fathom.service.errors import openai_error_body, request_id_of, status_for
from fathom.service.openai_schemas import (
    AssistantMessageIn,
    ChatChoiceOut,
    ChatCompletionIn,
    ChatCompletionOut,
    ChatMessageIn,
    ChatMessageOut,
    ChatUsageOut,
    ModelList,
    ModelOut,
    UserMessageIn,
    openai_error_responses,
)
from fathom.service.routes.search import finish_answer
from fathom.service.schemas import AskOut
from fathom.store.outage import database_unavailable, is_unavailable

__all__ = ["MODELS", "SOURCES_HEADING", "chat_content", "history_of", "router"]

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

# The models a client may name, and how each answers.
MODELS: dict[str, AskMode] = {"fathom": "single", "fathom-agent": "agent"}
# Fixed, so a model's `created` does not change between calls or servers.
_CREATED = 1767225600  # 2026-01-01

# The line that starts the sources under an answer; an assistant message sent back as history
# is cut there, so the follow-up rewrite sees the answer only.
SOURCES_HEADING = "Sources:"

# Pieces of the streamed content: a word and the space after it, like /v1/ask's deltas.
_PIECES = re.compile(r"\S+\s*|\s+")


def _model(model_id: str) -> ModelOut:
    return ModelOut(id=model_id, created=_CREATED)


@router.get(
    "/models",
    response_model=ModelList,
    summary="The models an OpenAI client can name (OpenAI-compatible)",
    description="`fathom`: one retrieval, one verified answer with citations. `fathom-agent`: agent "
    "mode (with an LLM configured, it may search and read again before answering; without one, the "
    "single-shot answer with a note).",
    responses=openai_error_responses(401, 429),
)
def list_models(_caller: CallerDep) -> ModelList:
    return ModelList(data=[_model(model_id) for model_id in MODELS])


@router.get(
    "/models/{model_id}",
    response_model=ModelOut,
    summary="One model (OpenAI-compatible)",
    responses=openai_error_responses(401, 404, 429),
)
def get_model(model_id: str, _caller: CallerDep) -> ModelOut:
    if model_id not in MODELS:
        raise NotFound(_unknown_model(model_id), code="model.not_found")
    return _model(model_id)


def _unknown_model(model_id: str) -> str:
    shown = model_id if len(model_id) <= 64 else model_id[:63] + "…"
    return f"no model {shown!r}; this server has {', '.join(MODELS)}"


def _text(message: UserMessageIn | AssistantMessageIn) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    return "\n".join(part.text or "" for part in message.content if part.type == "text")


def history_of(messages: list[ChatMessageIn]) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last user message) and the ``(question, answer)`` turns before it.

    Raises:
        InvalidQuery: no user message (``chat.no_question``).
    """
    said = [m for m in messages if isinstance(m, UserMessageIn | AssistantMessageIn)]
    last = max((i for i, m in enumerate(said) if isinstance(m, UserMessageIn)), default=None)
    if last is None:
        raise InvalidQuery("the messages hold no user message to answer", code="chat.no_question")
    turns: list[tuple[str, str]] = []
    asked: str | None = None
    for message in said[:last]:
        if isinstance(message, UserMessageIn):
            if asked is not None:  # two questions in a row: the first got no answer
                turns.append((asked, ""))
            asked = _text(message)
        else:
            answer = _text(message).split(f"\n\n{SOURCES_HEADING}\n", 1)[0]
            turns.append((asked or "", answer))
            asked = None
    if asked is not None:
        turns.append((asked, ""))
    return _text(said[last]), turns


def _where(citation: Citation) -> str:
    parts = [citation.source]
    if citation.page is not None:
        parts.append(f"page {citation.page}")
    if citation.heading_path:
        parts.append(" > ".join(citation.heading_path))
    return ", ".join(parts)


def chat_content(answer: Answer) -> str:
    """The assistant message: the answer with its ``[n]`` markers, then one line per source."""
    if not answer.citations:
        return answer.answer
    lines = [f"[{c.n}] {c.title} ({_where(c)})" for c in answer.citations]
    return f"{answer.answer}\n\n{SOURCES_HEADING}\n" + "\n".join(lines)


def _usage(answer: Answer) -> ChatUsageOut:
    usage = answer.usage
    return ChatUsageOut(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


_STREAM_DOC = {
    "200": {
        "content": {
            "text/event-stream": {
                # Each event (OpenAPI 3.1 reads `schema` as one event of the stream).
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "data": {
                            "type": "string",
                            "description": "A `chat.completion.chunk` as JSON, a chunk holding `error`, "
                            "or `[DONE]` last.",
                        }
                    },
                },
                "example": 'data: {"id": "chatcmpl-…", "object": "chat.completion.chunk", '
                '"created": 1767225600, "model": "fathom", "choices": [{"index": 0, '
                '"delta": {"role": "assistant", "content": ""}, '
                '"logprobs": null, "finish_reason": null}]}\n\n'
                "data: [DONE]\n\n",
            }
        }
    }
}


@router.post(
    "/chat/completions",
    response_model=ChatCompletionOut,
    summary="Answer the last user message, with citations (OpenAI-compatible)",
    description="OpenAI's Chat Completions API. The last `user` message is the question; earlier "
    "`user` and `assistant` messages are the conversation it follows (a follow-up is made standalone "
    "first, as in `POST /v1/conversations/{id}/messages`; nothing is stored). The reply's content is "
    "the verified answer with `[n]` markers and its numbered sources; `fathom` holds the answer as "
    "`POST /v1/ask` gives it. With `stream: true`: `chat.completion.chunk` events, the last one with "
    "`finish_reason` and `fathom`, then `data: [DONE]`; a failure after the stream started is a chunk "
    "holding `error`. fathom's own options go in `fathom` (`k`, `filters`); generation parameters such "
    "as `temperature` are ignored.",
    responses={**openai_error_responses(400, 401, 404, 413, 422, 429, 503), **_STREAM_DOC},  # type: ignore[dict-item]
)
def chat_completions(request: Request, body: ChatCompletionIn, service: ServiceDep, caller: CallerDep) -> Any:
    mode = MODELS.get(body.model)
    if mode is None:
        raise NotFound(_unknown_model(body.model), code="model.not_found")
    question, history = history_of(body.messages)
    options = body.fathom
    service.take_answer_budget(caller.key_id)
    # A refusal (a missing scope, a question too long ...) goes to the audit log as well.
    with recording_failure(service, caller, "ask"):
        stream = service.fathom.ask_after_stream(
            question,
            history,
            principal=caller.principal,
            k=options.k if options else None,
            filters=options.filters if options else None,
            mode=mode,
        )
        # Without streaming, the whole answer; with it, the first item, so that a refusal is a
        # plain JSON error response rather than a broken stream.
        items = list(stream) if not body.stream else [next(stream)]
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        answer = [item for item in items if isinstance(item, Answer)][-1]
        out = finish_answer(service, caller, answer, query=question)
        return ChatCompletionOut(
            id=completion_id,
            created=created,
            model=body.model,
            choices=[ChatChoiceOut(message=ChatMessageOut(content=chat_content(answer)))],
            usage=_usage(answer),
            fathom=out,
        )
    first = items[0]
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    chunks = _Chunks(completion_id, created, body.model, include_usage)
    return StreamingResponse(
        _events(service, caller, chunks, first, stream, request_id_of(request), question),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class _Chunks:
    """Builds the ``chat.completion.chunk`` events of one completion."""

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self.completion_id, self.created, self.model = completion_id, created, model
        self.include_usage = include_usage

    def event(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        chunk.update(extra)
        return _data(chunk)

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self.event([choice], **extra)


def _data(payload: Any) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


def _events(
    service: Service,
    caller: Caller,
    chunks: _Chunks,
    first: AnswerDelta | Answer,
    rest: Iterator[AnswerDelta | Answer],
    request_id: str,
    question: str,
) -> Iterator[bytes]:
    yield chunks.delta({"role": "assistant", "content": ""})
    item = first
    try:
        # The pieces as they are produced are unverified; only the final answer is sent.
        while isinstance(item, AnswerDelta):
            item = next(rest)
        out: AskOut = finish_answer(service, caller, item, query=question)
    except Exception as exc:  # the stream has started: errors become a chunk holding `error`
        error = exc if isinstance(exc, FathomError) else None
        if error is None and is_unavailable(exc):
            error = database_unavailable()
        if error is None:
            raise
        service.metrics.errors.labels(code=error.code).inc()
        yield _data(openai_error_body(status_for(error), error.code, error.message, request_id))
        yield b"data: [DONE]\n\n"
        return
    for piece in _PIECES.findall(chat_content(item)):
        yield chunks.delta({"content": piece})
    yield chunks.delta({}, "stop", fathom=out.model_dump())
    if chunks.include_usage:
        chunks.include_usage = False  # this last chunk holds the usage itself
        yield chunks.event([], usage=_usage(item).model_dump())
    yield b"data: [DONE]\n\n"
