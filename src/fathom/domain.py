"""The typed values that flow through fathom. No framework imports here."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "page_at",
    "AgentStep",
    "AgentTrace",
    "Answer",
    "AnswerDelta",
    "ApiKeyInfo",
    "Citation",
    "Conversation",
    "DocumentInfo",
    "FileOutcome",
    "Hit",
    "IngestReport",
    "JobInfo",
    "Passage",
    "Principal",
    "ROLES",
    "SCOPES",
    "QueryTransformTrace",
    "QuestionRewrite",
    "SearchResult",
    "SentenceSupport",
    "Section",
    "StoreStatus",
    "TextDocument",
    "Turn",
    "contextual_text",
    "text_source",
    "Usage",
]


# Per-tenant roles, lowest first (:mod:`fathom.permissions` decides what each may do).
ROLES: tuple[str, ...] = ("reader", "editor", "admin")
# What a credential may be used for (None on a principal: every scope).
SCOPES: tuple[str, ...] = ("search", "ask", "write", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: reads are filtered to what this principal may see.

    A document with an empty ACL is readable by the whole tenant; otherwise the
    principal's user or one of its groups must be listed. ``admin`` sees every
    document of its tenant.

    ``role`` is ``reader``, ``editor`` or ``admin`` (see :mod:`fathom.permissions`); ``admin``
    is kept equal to ``role == "admin"`` (``admin=True`` is the older spelling of the admin
    role, and a principal built without a role is an editor, what a non-admin key could do
    before roles). ``scopes`` narrows what the credential may be used for (None: everything);
    ``key_id`` is the API key it came with (owner of the documents a key without a user creates).
    """

    tenant: str = "default"
    user: str | None = None
    groups: tuple[str, ...] = ()
    admin: bool = False
    role: str = "editor"
    scopes: frozenset[str] | None = None
    key_id: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {', '.join(ROLES)}")
        if self.admin and self.role == "reader":
            raise ValueError("a principal cannot be both an admin and a reader")
        if self.admin or self.role == "admin":
            object.__setattr__(self, "admin", True)
            object.__setattr__(self, "role", "admin")
        if self.scopes is not None:
            unknown = set(self.scopes) - set(SCOPES)
            if unknown:
                raise ValueError(f"unknown scopes {sorted(unknown)}; expected some of {', '.join(SCOPES)}")

    def can_read(self, tenant: str, users: Sequence[str], groups: Sequence[str]) -> bool:
        """Whether a document of ``tenant`` with this ACL (users, groups) is visible to this principal.

        The rule every index and the store apply through the tokens of
        :mod:`fathom.index.vocabulary` (a property test holds the two to the same answers).
        """
        if tenant != self.tenant:
            return False
        if self.admin or (not users and not groups):
            return True
        return (bool(self.user) and self.user in users) or any(g in groups for g in self.groups)

    def has_scope(self, scope: str) -> bool:
        """Whether the credential may be used for ``scope`` (one of :data:`SCOPES`)."""
        return self.scopes is None or scope in self.scopes


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk. ``start``/``end`` are character offsets into the document's text.

    ``page`` is the 1-based page (or slide) where the chunk starts, for paged formats;
    ``also_in`` lists the sources of near-duplicate chunks collapsed into this one.
    """

    doc_id: str
    chunk_id: int
    source: str
    title: str
    score: float
    text: str
    start: int
    end: int
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    also_in: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["heading_path"] = list(self.heading_path)
        data["also_in"] = list(self.also_in)
        return data


@dataclass(frozen=True, slots=True)
class Section:
    """The section around a passage: every chunk of the document under the same heading path."""

    doc_id: str
    source: str
    title: str
    heading_path: tuple[str, ...]
    start: int
    end: int
    text: str
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Passage:
    """A quoted span of a document shown in context: the chunks around it, and where it lies.

    ``text`` is the document's text from ``start`` to ``end`` (the chunk holding the quote and
    its neighbours); ``quote_start``/``quote_end`` are document offsets inside that window.
    ``more_before``/``more_after`` say whether the document goes on past the window.
    """

    doc_id: str
    source: str
    title: str
    heading_path: tuple[str, ...]
    page: int | None
    start: int
    end: int
    text: str
    quote_start: int
    quote_end: int
    more_before: bool
    more_after: bool

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["heading_path"] = list(self.heading_path)
        return data


@dataclass(frozen=True, slots=True)
class Citation:
    """An exact quote from a document, with where it lies in the document's text."""

    n: int
    doc_id: str
    chunk_id: int
    source: str
    title: str
    quote: str
    start: int
    end: int
    heading_path: tuple[str, ...] = ()
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["heading_path"] = list(self.heading_path)
        return data


@dataclass(frozen=True, slots=True)
class SentenceSupport:
    """How well one answer sentence is supported by the quotes it cites.

    ``citations`` are the ``n`` of the answer's citations this sentence cites;
    ``support`` is 0..1 (lexical overlap with the quote mixed with embedding
    similarity, or an NLI entailment score when configured).
    """

    text: str
    citations: tuple[int, ...]
    support: float
    supported: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citations": list(self.citations),
            "support": round(self.support, 4),
            "supported": self.supported,
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens an answer consumed and what they cost (``cost`` is None without a price)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def plus(self, other: Usage) -> Usage:
        """Both usages together; the cost is the sum of the known costs (None when neither is known)."""
        costs = [c for c in (self.cost, other.cost) if c is not None]
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            round(sum(costs), 8) if costs else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
        }


@dataclass(frozen=True, slots=True)
class QueryTransformTrace:
    """What a query transform did to a question before retrieval (see ``query_transform``).

    ``kind`` is the transform: ``rewrite``, ``multi_query`` or ``hyde``. ``queries`` are the
    search queries actually run: the rewritten query, or the question followed by its
    paraphrases; for ``hyde`` the question, with the generated ``passage`` embedded for the
    dense side. ``fallback`` is the stable code of why the question was searched as asked
    instead (``provider.timeout``, ``budget.exhausted``, ...); ``None`` when the transform applied.
    ``usage`` is what this transform cost (zero when it came from the transform cache).
    """

    kind: str
    queries: tuple[str, ...] = ()
    passage: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
    fallback: str | None = None

    @property
    def applied(self) -> bool:
        return self.fallback is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "applied": self.applied,
            "queries": list(self.queries),
            "passage": self.passage,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "usage": self.usage.to_dict(),
            "cached": self.cached,
            "fallback": self.fallback,
        }


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Search hits with the query transform that shaped them (``None`` when none ran)."""

    hits: list[Hit]
    transform: QueryTransformTrace | None = None


@dataclass(frozen=True, slots=True)
class QuestionRewrite:
    """How a follow-up in a conversation became the standalone question that was answered.

    ``method`` is ``llm`` (the model rewrote it using the history), ``carry_over`` (no LLM,
    or it failed: the previous question's entities or key terms were carried into the
    follow-up; ``carried`` lists them) or ``unchanged`` (the follow-up stands on its own).
    ``fallback`` is the stable code of why an LLM rewrite was not used, if one was tried.
    """

    question: str
    standalone: str
    method: str
    carried: tuple[str, ...] = ()
    model: str | None = None
    prompt_version: str | None = None
    usage: Usage = field(default_factory=Usage)
    fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "standalone": self.standalone,
            "method": self.method,
            "carried": list(self.carried),
            "model": self.model,
            "prompt_version": self.prompt_version,
            "usage": self.usage.to_dict(),
            "fallback": self.fallback,
        }


@dataclass(frozen=True, slots=True)
class AgentStep:
    """One tool call of an agentic answer, or its final answer (``tool`` = ``answer``).

    ``turn`` is the model call that asked for it; ``usage`` holds that call's tokens on the
    first step of the turn (zero on the others), ``ms`` the model call (first step) plus the
    tool's own time. ``passages`` are the passage numbers the tool gave the model and
    ``hits`` their chunk ids; ``error`` a stable code when the call was refused.
    """

    n: int
    turn: int
    tool: str
    arguments: dict[str, Any]
    passages: tuple[int, ...] = ()
    hits: tuple[int, ...] = ()
    usage: Usage = field(default_factory=Usage)
    ms: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "turn": self.turn,
            "tool": self.tool,
            "arguments": self.arguments,
            "passages": list(self.passages),
            "hits": list(self.hits),
            "usage": self.usage.to_dict(),
            "ms": round(self.ms, 1),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class AgentTrace:
    """What an agentic answer did: its steps, why it stopped, and the limits it ran under.

    ``stopped`` is ``answered`` or the stable code of what ended the loop (``agent.max_steps``,
    ``agent.max_seconds``, ``agent.max_tokens``, ``provider.timeout``, ``agent.no_tools`` ...);
    ``fallback`` is that code when the single-shot answer was given instead.
    """

    steps: tuple[AgentStep, ...]
    stopped: str
    max_steps: int
    max_seconds: float
    max_tokens: int
    model: str | None = None
    prompt_version: str | None = None
    usage: Usage = field(default_factory=Usage)
    ms: float = 0.0
    fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.to_dict() for s in self.steps],
            "stopped": self.stopped,
            "fallback": self.fallback,
            "limits": {
                "max_steps": self.max_steps,
                "max_seconds": self.max_seconds,
                "max_tokens": self.max_tokens,
            },
            "model": self.model,
            "prompt_version": self.prompt_version,
            "usage": self.usage.to_dict(),
            "ms": round(self.ms, 1),
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer with inline ``[n]`` markers that refer to ``citations``, or an abstention.

    ``groundedness`` is the share of answer text whose sentences are supported by
    their quotes (1.0 for extractive answers, which are quotes; None when abstaining).
    ``sentences`` holds per-sentence support, ``model`` the answerer that produced the
    text (``extractive`` or a provider spec), ``notes`` what a user should know, such as
    a fallback to the extractive answer.
    """

    answer: str
    citations: tuple[Citation, ...]
    abstained: bool
    hits: tuple[Hit, ...] = ()
    groundedness: float | None = None
    sentences: tuple[SentenceSupport, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str = "extractive"
    prompt_version: str | None = None
    notes: tuple[str, ...] = ()
    cached: bool = False
    query_transform: QueryTransformTrace | None = None
    # A conversation's follow-up: how it became the standalone question answered.
    rewrite: QuestionRewrite | None = None
    # Agent mode: the steps the agent took (also when it fell back to the single-shot answer).
    agent: AgentTrace | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "citations": [c.to_dict() for c in self.citations],
            "abstained": self.abstained,
            "groundedness": self.groundedness,
            "sentences": [s.to_dict() for s in self.sentences],
            "usage": self.usage.to_dict(),
            "model": self.model,
            "prompt_version": self.prompt_version,
            "notes": list(self.notes),
            "cached": self.cached,
            "query_transform": self.query_transform.to_dict() if self.query_transform else None,
            "rewrite": self.rewrite.to_dict() if self.rewrite else None,
            "agent": self.agent.to_dict() if self.agent else None,
        }


@dataclass(frozen=True, slots=True)
class Turn:
    """One question and answer of a conversation, as stored.

    ``standalone_question`` is what was searched and answered (the follow-up rewritten with
    the history). ``redacted`` turns lost their answer and citations because a document they
    cited was deleted, or because the reader may no longer read it.
    """

    n: int
    question: str
    standalone_question: str
    answer: str
    citations: tuple[Citation, ...]
    abstained: bool
    model: str
    mode: str
    created_at: str
    redacted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.answer,
            "citations": [c.to_dict() for c in self.citations],
            "abstained": self.abstained,
            "model": self.model,
            "mode": self.mode,
            "created_at": self.created_at,
            "redacted": self.redacted,
        }


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation: its turns in order (empty until the first question)."""

    conversation_id: str
    created_at: str
    updated_at: str
    turns: tuple[Turn, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "turns": [t.to_dict() for t in self.turns],
        }


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """A piece of answer text as it is produced (before verification); streamed to callers."""

    text: str


FileStatus = Literal["added", "updated", "unchanged", "deleted", "failed", "skipped", "no_text"]


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one source during ingest or sync."""

    source: str
    status: FileStatus
    doc_id: str | None = None
    chunks: int = 0
    error_code: str | None = None
    message: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class IngestReport:
    """The outcome of one ingest or sync run, one entry per source."""

    outcomes: list[FileOutcome] = field(default_factory=list)

    def count(self, status: FileStatus) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        statuses: tuple[FileStatus, ...] = (
            "added",
            "updated",
            "unchanged",
            "deleted",
            "failed",
            "skipped",
            "no_text",
        )
        return {
            "summary": {status: self.count(status) for status in statuses},
            "files": [asdict(o) for o in self.outcomes],
        }


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """A stored document, without its text."""

    doc_id: str
    source: str
    title: str
    mime_type: str
    content_hash: str
    chunks: int
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    acl_users: tuple[str, ...] = ()
    acl_groups: tuple[str, ...] = ()
    # Who created it: its user, ``key:<key id>`` for a key without a user, None when unknown.
    owner: str | None = None
    # Who else may replace it, change its ACLs or delete it (beside its owner and admins).
    write_users: tuple[str, ...] = ()
    write_groups: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["acl"] = {"users": list(self.acl_users), "groups": list(self.acl_groups)}
        data["write_acl"] = {"users": list(self.write_users), "groups": list(self.write_groups)}
        del data["acl_users"], data["acl_groups"], data["write_users"], data["write_groups"]
        return data


JobStatus = Literal["queued", "running", "succeeded", "failed"]


@dataclass(frozen=True, slots=True)
class JobInfo:
    """An ingestion job: queued -> running -> succeeded, or failed with a reason."""

    job_id: str
    document_id: str
    status: JobStatus
    attempts: int
    error_code: str | None
    reason: str | None
    created_at: str
    finished_at: str | None
    # Where the job stands (set by JobQueue.progress): when its current attempt started
    # (running jobs), and jobs expected before it and seconds until it finishes (queued jobs).
    started_at: str | None = None
    position: int | None = None
    eta_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as listed: never the key itself, which is shown once at creation."""

    key_id: str
    prefix: str
    tenant: str
    user: str | None
    groups: tuple[str, ...]
    admin: bool
    created_at: str
    revoked: bool
    role: str = "editor"
    # None: every scope.
    scopes: tuple[str, ...] | None = None
    expires_at: str | None = None
    expired: bool = False
    # After a rotation: until when the previous secret still works (None: it does not).
    previous_valid_until: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["groups"] = list(self.groups)
        data["scopes"] = list(self.scopes) if self.scopes is not None else None
        return data


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What ``fathom status`` reports."""

    home: str
    database: str
    documents: int
    chunks: int
    last_sequence: int
    index_positions: dict[str, int]
    index_chunks: dict[str, int]
    disk_bytes: int
    embedder: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TextDocument:
    """A document given as text rather than as a file (API uploads, evaluation corpora)."""

    source: str
    text: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def text_source(content: bytes) -> str:
    """The source of a document uploaded without one: derived from its content, so every front
    (REST upload, MCP ``ingest_text``) stores the same text once."""
    return f"text:{hashlib.sha256(content).hexdigest()[:24]}"


def contextual_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """A chunk as the embedder and BM25 see it: its title and heading path, then its text.

    The context lets a passage deep in a manual match a question that names the manual or
    its section.
    """
    context = [title] + [h for h in heading_path if h and h != title]
    return "\n".join([" > ".join(part for part in context if part), text]).strip()


def page_at(page_starts: Sequence[int], offset: int) -> int:
    """The 1-based page holding text ``offset``, given the offsets where pages begin."""
    return max(1, bisect.bisect_right(page_starts, offset))
