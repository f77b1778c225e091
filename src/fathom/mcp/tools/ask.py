"""The ``ask`` tool: a cited, verified answer, optionally within a conversation."""

from __future__ import annotations

from pydantic import BaseModel, Field

from fathom.guard.fields import Filters
from fathom.mcp.tools.base import (
    _FILTERS_DESCRIPTION,
    _MAX_QUERY_FIELD,
    CitationOut,
    ToolContext,
    _Args,
    _clip,
    _Result,
)

__all__ = ["AskArgs", "AskResult", "ask"]


class AskArgs(_Args):
    question: str = Field(
        min_length=1,
        max_length=_MAX_QUERY_FIELD,
        description="A self-contained question (resolve 'it'/'that' from the conversation first). "
        "The server refuses questions longer than its max_query_chars setting (2000 characters "
        "by default).",
    )
    k: int | None = Field(
        default=None,
        ge=1,
        le=50,
        description="How many retrieved passages the answer may draw on (1-50; default: the "
        "server's answer_chunks setting, 6).",
    )
    filters: Filters | None = Field(default=None, description=_FILTERS_DESCRIPTION)
    conversation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Ask within a conversation: 'new' starts one (its id comes back as "
        "conversation_id); pass that id with the next questions and follow-ups such as 'and its "
        "phone?' are made standalone from the earlier turns (standalone_question says how it was "
        "read). Leave out for a one-off question.",
    )


class AskUsage(BaseModel):
    """What the answer used (the same as the REST API's ``usage``)."""

    prompt_tokens: int = Field(description="LLM prompt tokens (0 for extractive answers).")
    completion_tokens: int = Field(description="LLM completion tokens.")
    total_tokens: int
    cost: float | None = Field(description="USD, when the server has a price for the model.")
    cache_hit: bool = Field(description="True when the answer came from the answer cache.")


class AskResult(_Result):
    answer: str = Field(description="The answer; each sentence ends with [n] markers naming its citations.")
    abstained: bool = Field(
        description="True when the documents do not support an answer; then say so rather than guess."
    )
    citations: list[CitationOut] = Field(description="The quotes the [n] markers refer to.")
    answer_id: str = Field(description="Id of this answer (for feedback through the REST API).")
    model: str = Field(description="'extractive' (verbatim sentences, no LLM) or the LLM that wrote it.")
    groundedness: float | None = Field(
        description="Share of the answer supported by its citations (0-1); null when abstaining."
    )
    notes: list[str] = Field(description="What the reader should know, e.g. a fallback to extractive.")
    conversation_id: str | None = Field(
        default=None, description="The conversation this answer belongs to (pass it with the next question)."
    )
    standalone_question: str | None = Field(
        default=None,
        description="In a conversation, when the question was a follow-up: the standalone question "
        "that was searched and answered.",
    )

    usage: AskUsage | None = Field(default=None, description="Tokens, cost and cache hit of this answer.")

    def render(self) -> str:
        lines = []
        if self.standalone_question:
            lines.append(f"(read as: {self.standalone_question})")
        if self.abstained:
            lines.append(self.answer or "Not found in the documents you can read.")
        else:
            lines.append(self.answer)
        if self.citations:
            lines += ["", "Sources:"]
            for citation in self.citations:
                lines += [citation.label(), f"    \u201c{_clip(citation.quote)}\u201d"]
        lines += [f"note: {note}" for note in self.notes]
        usage = self.usage
        if usage is not None and (usage.total_tokens or usage.cache_hit):
            cost = "" if usage.cost is None else f", ${usage.cost:.6f}"
            cached = " (from the answer cache)" if usage.cache_hit else ""
            lines.append(f"usage: {usage.total_tokens} tokens{cost}{cached}")
        if self.conversation_id:
            lines.append(f"conversation_id: {self.conversation_id}")
        return "\n".join(lines)


def ask(ctx: ToolContext, args: AskArgs) -> AskResult:
    ctx.before_answer()
    fathom, conversation_id = ctx.fathom, args.conversation_id
    if conversation_id is None:
        answer = fathom.ask(args.question, k=args.k, filters=args.filters, principal=ctx.principal)
    else:
        if conversation_id == "new":
            started = fathom.start_conversation(principal=ctx.principal, key_id=ctx.key_id)
            conversation_id = started.conversation_id
        answer = fathom.converse(
            conversation_id,
            args.question,
            principal=ctx.principal,
            key_id=ctx.key_id,
            k=args.k,
            filters=args.filters,
        )
    answer_id = fathom.record_answer(answer, principal=ctx.principal, key_id=ctx.key_id)
    ctx.answered(args.question, answer, answer_id)
    ctx.after_answer(answer)
    rewritten = answer.rewrite is not None and answer.rewrite.method != "unchanged"
    return AskResult(
        conversation_id=conversation_id,
        standalone_question=answer.rewrite.standalone if rewritten and answer.rewrite else None,
        answer=answer.answer,
        abstained=answer.abstained,
        citations=[CitationOut.of_citation(c) for c in answer.citations],
        answer_id=answer_id,
        model=answer.model,
        groundedness=answer.groundedness,
        notes=list(answer.notes),
        usage=AskUsage(**answer.usage.to_dict(), cache_hit=answer.cached),
    )
