"""Bodies of the OpenAI-compatible routes (``/v1/models``, ``/v1/chat/completions``).

They follow OpenAI's Chat Completions API, so its clients (the ``openai`` SDK, LangChain's
``ChatOpenAI``, chat front ends) talk to fathom unchanged. Parameters that steer a generative
model (``temperature``, ``max_tokens`` ...) are accepted and ignored: fathom's answers are
grounded in the documents, and the answerer is the server's. fathom's own answer, with its
citations, travels in the ``fathom`` extension field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from fathom.guard.fields import Filters
from fathom.service.schemas import AskOut

__all__ = [
    "ChatChoiceOut",
    "ChatCompletionIn",
    "ChatCompletionOut",
    "AssistantMessageIn",
    "ChatMessageIn",
    "ChatMessageOut",
    "ChatOptionsIn",
    "ChatUsageOut",
    "ModelList",
    "ModelOut",
    "OpenAIErrorOut",
    "UserMessageIn",
    "openai_error_responses",
]

# A text's bound in the schema, so that a request at that bound still fits the default
# max_request_bytes (64 KiB). How many messages and parts a request holds is bounded by
# max_request_bytes alone (413 before the body is read): a schema bound on them could not be
# reached without passing that limit. fathom's own query limit (max_query_chars, 2000 by
# default) applies to the question, and a follow-up's rewrite reads the last turns only.
_MAX_CONTENT = 8192


class TextPartIn(BaseModel):
    """A text part of a user's message (fathom answers text questions only)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["text"]
    text: str = Field(min_length=1, max_length=_MAX_CONTENT)


class ContentPartIn(BaseModel):
    """A part of another message's content; text parts are read, others ignored."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=64, examples=["text"])
    text: str | None = Field(default=None, max_length=_MAX_CONTENT)


class UserMessageIn(BaseModel):
    """A question: the last user message is the one answered, earlier ones are history."""

    model_config = ConfigDict(extra="allow")

    role: Literal["user"]
    content: (
        Annotated[str, Field(min_length=1, max_length=_MAX_CONTENT)]
        | Annotated[list[TextPartIn], Field(min_length=1)]
    )


class AssistantMessageIn(BaseModel):
    """An earlier answer: history for the question after it."""

    model_config = ConfigDict(extra="allow")

    role: Literal["assistant"]
    content: Annotated[str, Field(max_length=_MAX_CONTENT)] | list[ContentPartIn] | None = None


class OtherMessageIn(BaseModel):
    """``system``, ``developer`` and tool messages: accepted and ignored (answers come from the
    documents, not from instructions)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "tool", "function"]
    content: Any = None


ChatMessageIn = Annotated[UserMessageIn | AssistantMessageIn | OtherMessageIn, Field(discriminator="role")]


class StreamOptionsIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool = Field(default=False, description="Send a last chunk with `usage`.")


class ChatOptionsIn(BaseModel):
    """fathom's own options (send with the SDK's ``extra_body={"fathom": {...}}``)."""

    model_config = ConfigDict(extra="forbid")

    k: int | None = Field(default=None, ge=1, le=50, description="Chunks the answerer reads.")
    filters: Filters | None = None


class ChatCompletionIn(BaseModel):
    """OpenAI's chat completion request. Unknown OpenAI parameters are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(
        max_length=128,
        description="`fathom` (one retrieval, one answer) or `fathom-agent` (agent mode).",
        examples=["fathom"],
    )
    messages: list[ChatMessageIn] = Field(
        min_length=1,
        description="The conversation: the last `user` message is the question, earlier `user` and "
        "`assistant` messages its history.",
        json_schema_extra={"contains": {"type": "object", "properties": {"role": {"const": "user"}}}},
    )
    stream: StrictBool | None = Field(default=False, description="Answer as `chat.completion.chunk` events.")
    stream_options: StreamOptionsIn | None = None
    n: int | None = Field(default=1, ge=1, le=1, description="Only one choice is given.")
    fathom: ChatOptionsIn | None = Field(default=None, description="fathom's options: `k`, `filters`.")


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="The answer with its `[n]` markers, then its numbered sources.")
    refusal: None = None


class ChatChoiceOut(BaseModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatUsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionOut(BaseModel):
    id: str = Field(examples=["chatcmpl-3f9c2a7d5b1e4c8a9d0f6e2b7a1c5d3e"])
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(description="Unix seconds.")
    model: str
    system_fingerprint: None = None
    choices: list[ChatChoiceOut]
    usage: ChatUsageOut
    fathom: AskOut = Field(
        description="fathom's answer as `POST /v1/ask` gives it: `answer_id` (for feedback), "
        "`citations` with document ids, sources, pages and quotes, `abstained`, `rewrite` ..."
    )


class ModelOut(BaseModel):
    id: str = Field(examples=["fathom"])
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "fathom"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = None
    code: str = Field(description="fathom's stable error code.", examples=["chat.no_question"])
    request_id: str


class OpenAIErrorOut(BaseModel):
    error: OpenAIErrorDetail


def openai_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses of an OpenAI-compatible route."""
    descriptions = {
        400: "The body could not be read (e.g. malformed JSON).",
        401: "No valid API key.",
        404: "No such model.",
        413: "The body is larger than max_request_bytes.",
        422: "Invalid request (e.g. no user message last, query too long).",
        429: "Rate limited; see Retry-After.",
        503: "The database or Redis does not answer; see Retry-After.",
    }
    return {status: {"model": OpenAIErrorOut, "description": descriptions[status]} for status in statuses}
