"""Request and response bodies of the HTTP API (JSON at the edge, domain types inside)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fathom.domain import Answer, Conversation, DocumentInfo, Hit, JobInfo, Passage
from fathom.guard.fields import Filters, Metadata, Name

__all__ = [
    "AclIn",
    "AgentLimitsIn",
    "AgentTraceOut",
    "AskIn",
    "AskOut",
    "CitationOut",
    "ConversationDeletedOut",
    "ConversationOut",
    "DocumentAccepted",
    "DocumentIn",
    "DocumentList",
    "DocumentOut",
    "ErrorOut",
    "FeedbackIn",
    "FeedbackOut",
    "HitOut",
    "JobOut",
    "MessageIn",
    "MessageOut",
    "PassageOut",
    "RewriteOut",
    "SearchIn",
    "SearchOut",
    "SentenceOut",
    "TurnOut",
    "WriteAclIn",
]

# A bound on queries before fathom's own limit (max_query_chars, 2000 by default) applies; it
# keeps the longest valid query well inside the default max_request_bytes (64 KiB).
_MAX_QUERY = 8192


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AclIn(_In):
    """Who may read a document. Both empty (the default): everyone in the tenant."""

    users: list[Name] = Field(default_factory=list, max_length=1000, examples=[["alice"]])
    groups: list[Name] = Field(default_factory=list, max_length=1000, examples=[["eng"]])


class WriteAclIn(_In):
    """Editors who may replace the document, change its ACLs or delete it, as its owner may.
    Both empty: only its owner and the tenant's admins. Readers never write, whatever it says."""

    users: list[Name] = Field(default_factory=list, max_length=1000, examples=[["bob"]])
    groups: list[Name] = Field(default_factory=list, max_length=1000, examples=[["docs-team"]])


class DocumentIn(_In):
    """A document given as text (Markdown, HTML or plain text; the format is detected)."""

    text: str = Field(min_length=1, description="The document's content.", examples=["# Runbook\n\nRestart."])
    title: str | None = Field(default=None, max_length=1024, examples=["Runbook"])
    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="The document's identity in the tenant; uploading the same source replaces it. "
        "Default: derived from the content.",
        examples=["wiki/runbook.md"],
    )
    acl: AclIn | None = None
    write_acl: WriteAclIn | None = Field(
        default=None,
        description="Who else may write the document. Left out: a new document gets an empty one "
        "(owner and admins only) and a replaced one keeps its own.",
    )
    metadata: Metadata | None = Field(default=None, examples=[{"team": "ops"}])


class DocumentAccepted(BaseModel):
    document_id: str = Field(examples=["5f0c6a1e9b2d4c7e8a1b2c3d4e5f6a7b"])
    job_id: str = Field(examples=["0a1b2c3d4e5f60718293a4b5c6d7e8f9"])
    status: str = Field(description="The job's status now.", examples=["queued"])


class JobOut(BaseModel):
    job_id: str
    document_id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    attempts: int
    error_code: str | None = Field(description="Why the job failed (stable code).")
    reason: str | None = Field(description="Why the job failed, for people.")
    created_at: str
    finished_at: str | None
    started_at: str | None = Field(
        default=None, description="Running jobs: when the current attempt started. Otherwise null."
    )
    position: int | None = Field(
        default=None,
        description="Queued jobs: how many jobs are expected to start before this one. Workers "
        "serve tenants in turn, so it counts this tenant's older jobs plus, from each other "
        "tenant, about as many jobs as turns pass first; an estimate, since queues change. "
        "Otherwise null.",
        examples=[3],
    )
    eta_seconds: float | None = Field(
        default=None,
        description="Queued jobs: estimated seconds until the job finishes, computed as the mean "
        "run time of the last 50 finished jobs (claim to finish) times (position / jobs running "
        "now + 1). Null before any job has finished, and for jobs that are not queued.",
        examples=[12.5],
    )

    @classmethod
    def of(cls, job: JobInfo) -> JobOut:
        return cls.model_validate(job.to_dict())


class AclOut(BaseModel):
    users: list[str]
    groups: list[str]


class DocumentOut(BaseModel):
    doc_id: str
    source: str
    title: str
    mime_type: str
    content_hash: str
    chunks: int
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    acl: AclOut = Field(description="Who may read it (both empty: the whole tenant).")
    owner: str | None = Field(
        default=None,
        description="Who created it: its user, or `key:<key id>` for a key without a user; null for "
        "documents from the CLI or from before owners were recorded (admins write those).",
    )
    write_acl: AclOut = Field(
        default_factory=lambda: AclOut(users=[], groups=[]),
        description="Editors who may write it besides its owner and admins (both empty: nobody else).",
    )

    @classmethod
    def of(cls, doc: DocumentInfo) -> DocumentOut:
        return cls.model_validate(doc.to_dict())


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class DeletedOut(BaseModel):
    document_id: str
    deleted: bool = True


class SearchIn(_In):
    query: str = Field(min_length=1, max_length=_MAX_QUERY, examples=["how do I rotate the keys?"])
    k: int = Field(default=10, ge=1, le=100, description="How many hits.")
    filters: Filters | None = None


class HitOut(BaseModel):
    doc_id: str
    chunk_id: int
    source: str
    title: str
    score: float
    text: str
    start: int
    end: int
    heading_path: list[str]
    page: int | None = Field(default=None, description="1-based page or slide, for paged documents.")

    @classmethod
    def of(cls, hit: Hit) -> HitOut:
        return cls.model_validate(hit.to_dict())


class SearchOut(BaseModel):
    hits: list[HitOut]


class AgentLimitsIn(_In):
    """Per-request limits of agent mode; each is capped by its server setting (``agent_*``)."""

    max_steps: int | None = Field(default=None, ge=1, le=50, description="Most tool calls (searches, reads).")
    max_seconds: float | None = Field(default=None, gt=0, le=3600, description="Most seconds.")
    max_tokens: int | None = Field(
        default=None, ge=256, description="Most LLM tokens, prompt and completion."
    )


_MODE_DESCRIPTION = (
    "`single` (default): one retrieval, one answer. `agent`: with an LLM configured, the model may "
    "decompose the question, search again and read passages in context before answering, within "
    "hard limits on steps, time and tokens; when a limit is hit or the provider fails, the "
    "single-shot answer is given with a note. Every step is in the response's `agent` trace."
)


class AskIn(_In):
    query: str = Field(min_length=1, max_length=_MAX_QUERY, examples=["How often are keys rotated?"])
    k: int | None = Field(default=None, ge=1, le=50, description="Chunks the answerer reads.")
    filters: Filters | None = None
    mode: Literal["single", "agent"] = Field(default="single", description=_MODE_DESCRIPTION)
    agent: AgentLimitsIn | None = Field(default=None, description="Lower limits for agent mode.")


class CitationOut(BaseModel):
    n: int
    doc_id: str
    chunk_id: int
    source: str
    title: str
    quote: str
    start: int
    end: int
    heading_path: list[str]
    page: int | None = Field(default=None, description="1-based page or slide, for paged documents.")


class SentenceOut(BaseModel):
    text: str
    citations: list[int] = Field(description="The `n` of the citations this sentence cites.")
    support: float = Field(description="0..1: how well its quotes support the sentence.")
    supported: bool = Field(
        description="False: the sentence was removed from the answer, or marked, as unsupported."
    )


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None = Field(description="USD, when the model's price is configured.")


class AnswerUsageOut(UsageOut):
    """What an answer used: LLM tokens (zero for extractive answers), their cost, and whether
    the answer came from the answer cache (then it cost nothing this time)."""

    cache_hit: bool = Field(default=False, description="True when the answer came from the answer cache.")


class RewriteOut(BaseModel):
    """How a follow-up was made standalone before it was searched and answered."""

    question: str = Field(description="The message as sent.")
    standalone: str = Field(description="What was searched and answered.")
    method: Literal["llm", "carry_over", "unchanged"] = Field(
        description="`llm`: the model rewrote it from the history; `carry_over`: the previous "
        "question's entities or key terms were carried in (no LLM, or it failed); `unchanged`: it "
        "stands on its own."
    )
    carried: list[str] = Field(description="What `carry_over` carried from the previous question.")
    model: str | None
    prompt_version: str | None
    usage: UsageOut
    fallback: str | None = Field(description="Why an LLM rewrite was not used (stable code).")


class AgentStepOut(BaseModel):
    n: int
    turn: int = Field(description="The model call that asked for this step.")
    tool: str = Field(description="`decompose`, `search`, `read_passage`, `answer` or `limit`.")
    arguments: dict[str, Any]
    passages: list[int] = Field(description="Passage numbers given to the model.")
    hits: list[int] = Field(description="Chunk ids of those passages.")
    usage: UsageOut = Field(description="Tokens of the model call (on the first step of a turn).")
    ms: float
    error: str | None = Field(description="Stable code when the call was refused.")


class AgentLimitsOut(BaseModel):
    max_steps: int
    max_seconds: float
    max_tokens: int


class AgentTraceOut(BaseModel):
    steps: list[AgentStepOut]
    stopped: str = Field(description="`answered`, or what ended the loop (e.g. `agent.max_steps`).")
    fallback: str | None = Field(description="Set when the single-shot answer was given instead.")
    limits: AgentLimitsOut
    model: str | None
    prompt_version: str | None
    usage: UsageOut
    ms: float


class AskOut(BaseModel):
    answer_id: str = Field(description="Refer to this answer in POST /v1/feedback.")
    answer: str
    citations: list[CitationOut]
    abstained: bool
    groundedness: float | None = Field(
        default=None,
        description="Share of the answer's text supported by its quotes (1.0 for extractive answers; "
        "null when abstaining).",
    )
    sentences: list[SentenceOut] = Field(
        default_factory=list, description="Per-sentence support, including sentences removed as unsupported."
    )
    model: str = Field(default="extractive", description="The answerer that wrote the text.")
    notes: list[str] = Field(
        default_factory=list,
        description="What a reader should know, e.g. that the LLM was unavailable and the extractive "
        "answer is shown.",
    )
    rewrite: RewriteOut | None = Field(
        default=None, description="Conversation messages: how the follow-up became a standalone question."
    )
    agent: AgentTraceOut | None = Field(default=None, description="Agent mode: every step it took.")
    usage: AnswerUsageOut = Field(
        default_factory=lambda: AnswerUsageOut(
            prompt_tokens=0, completion_tokens=0, total_tokens=0, cost=None
        ),
        description="Tokens, cost and cache hit of this answer (the query transform's tokens included).",
    )

    @classmethod
    def of(cls, answer_id: str, answer: Answer) -> AskOut:
        usage = {**answer.usage.to_dict(), "cache_hit": answer.cached}
        return cls.model_validate({"answer_id": answer_id, **answer.to_dict(), "usage": usage})


class MessageIn(_In):
    question: str = Field(
        min_length=1,
        max_length=_MAX_QUERY,
        description="The next question; a follow-up such as 'And its phone?' is made standalone first.",
        examples=["And its emergency phone?"],
    )
    k: int | None = Field(default=None, ge=1, le=50, description="Chunks the answerer reads.")
    filters: Filters | None = None
    mode: Literal["single", "agent"] = Field(default="single", description=_MODE_DESCRIPTION)
    agent: AgentLimitsIn | None = Field(default=None, description="Lower limits for agent mode.")


class MessageOut(AskOut):
    conversation_id: str


class TurnOut(BaseModel):
    n: int
    question: str = Field(description="The message as sent.")
    standalone_question: str = Field(description="What was searched and answered.")
    answer: str
    citations: list[CitationOut]
    abstained: bool
    model: str
    mode: Literal["single", "agent"]
    created_at: str
    redacted: bool = Field(
        description="True: a document this answer cited was deleted or is no longer readable by the "
        "caller, so its answer and citations are not shown."
    )


class ConversationOut(BaseModel):
    conversation_id: str
    created_at: str
    updated_at: str = Field(description="The last message; retention counts from here.")
    turns: list[TurnOut]

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationOut:
        return cls.model_validate(conversation.to_dict())


class ConversationDeletedOut(BaseModel):
    conversation_id: str
    deleted: bool = True


class PassageOut(BaseModel):
    """A cited quote in context: the chunks around it, with the quote's offsets inside them."""

    doc_id: str
    source: str
    title: str
    heading_path: list[str]
    page: int | None = Field(description="1-based page or slide of the quote, for paged documents.")
    start: int = Field(description="Document offset where `text` begins.")
    end: int = Field(description="Document offset where `text` ends.")
    text: str = Field(description="The document's text from `start` to `end`.")
    quote_start: int = Field(description="Document offset of the quote (inside `start`..`end`).")
    quote_end: int
    more_before: bool = Field(description="The document has text before `start`.")
    more_after: bool = Field(description="The document has text after `end`.")

    @classmethod
    def of(cls, passage: Passage) -> PassageOut:
        return cls.model_validate(passage.to_dict())


class FeedbackIn(_In):
    answer_id: str = Field(min_length=1, max_length=64)
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=4000)


class FeedbackOut(BaseModel):
    feedback_id: str = Field(
        description="The feedback's id: random hex, unrelated to any other feedback.",
        examples=["3f9c2a7d5b1e4c8a9d0f6e2b7a1c5d3e"],
    )


class ErrorDetail(BaseModel):
    code: str = Field(examples=["document.not_found"])
    message: str
    request_id: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])


class ReadyOut(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, bool]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route may answer with."""
    descriptions = {
        400: "The body could not be read (e.g. malformed JSON).",
        401: "No valid API key (`auth.invalid_key`, `auth.key_expired`, ...) or token.",
        403: "Not allowed: readable but not writable by the caller's role, ownership and write ACL "
        "(`document.write_denied`, `document.delete_denied`), an admin-only route, or a key used "
        "outside its scopes (`auth.scope_missing`).",
        404: "No such thing, or one the caller may not read.",
        409: "Conflicts with existing state.",
        413: "The body is larger than the route's limit (max_upload_bytes for uploads, "
        "max_request_bytes for other requests).",
        415: "Unsupported content type.",
        422: "Invalid request (e.g. query too long).",
        429: "Rate limited; see Retry-After.",
        503: "The database or Redis does not answer (`backend.unavailable`); see Retry-After.",
        507: "The disk holding the store or the indexes is full (storage.full); nothing was written.",
    }
    return {status: {"model": ErrorOut, "description": descriptions[status]} for status in statuses}
