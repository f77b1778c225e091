"""Conversations: follow-up questions answered in the context of the turns before them.

Each message is made standalone first (:mod:`fathom.answer.followup`: the LLM when one is
configured, else the deterministic carry-over), answered like ``ask`` (single-shot or agent
mode) with the rewrite in the answer's trace, and stored as a turn once its final answer is
known. A conversation exists only for its owner (anyone else gets ``conversation.not_found``)
and only while it is within retention. Turns citing a document the reader may no longer read
are shown redacted, and never reach the rewrite's prompt.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import structlog

from fathom.answer.agent import AgentLimits
from fathom.answer.followup import HistoryTurn, rewrite_followup
from fathom.answer.pipeline import AnswerPipeline, AskMode
from fathom.config import Settings
from fathom.domain import Answer, AnswerDelta, Conversation, Principal, QuestionRewrite, Turn
from fathom.errors import NotFound
from fathom.retrieve.documents import DocumentReader
from fathom.retrieve.pipeline import SearchPipeline
from fathom.store.conversations import ConversationOwner, ConversationStore, NewTurn

__all__ = ["ConversationService"]

log = structlog.get_logger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ConversationService:
    """Starts, reads, continues and deletes conversations for their owners.

    Args:
        settings: the settings (retention, rewrite timeout and tokens, query limits).
        store: where conversations and turns are kept.
        search: checks questions (length) and filters.
        answering: answers each standalone question.
        reader: says which cited documents a reader may still read.
    """

    def __init__(
        self,
        settings: Settings,
        store: ConversationStore,
        search: SearchPipeline,
        answering: AnswerPipeline,
        reader: DocumentReader,
    ) -> None:
        self._settings = settings
        self._store = store
        self._search = search
        self._answering = answering
        self._reader = reader

    def _active_since(self) -> datetime:
        days = self._settings.conversation_retention_days
        return datetime.now(UTC) - timedelta(days=days) if days > 0 else _EPOCH

    def start(self, principal: Principal, key_id: str | None = None) -> Conversation:
        """A new conversation owned by the principal (through ``key_id`` when it has no user).

        Conversations of the tenant past retention are deleted first.
        """
        if self._settings.conversation_retention_days > 0:
            self._store.purge(self._active_since(), tenant=principal.tenant)
        return self._store.create(ConversationOwner.of(principal, key_id))

    def get(self, principal: Principal, conversation_id: str, key_id: str | None = None) -> Conversation:
        """The conversation and its turns, as this principal may see them now.

        Raises:
            NotFound: no such conversation, another principal's, or one past retention.
        """
        found = self._store.get(
            ConversationOwner.of(principal, key_id), conversation_id, active_since=self._active_since()
        )
        if found is None:
            raise NotFound(f"no conversation {conversation_id!r}", code="conversation.not_found")
        readable: dict[str, bool] = {}

        def may_read(doc_id: str) -> bool:
            if doc_id not in readable:
                try:
                    self._reader.readable(principal, doc_id)
                    readable[doc_id] = True
                except NotFound:
                    readable[doc_id] = False
            return readable[doc_id]

        turns = tuple(
            t if all(may_read(c.doc_id) for c in t.citations) else _redacted(t) for t in found.turns
        )
        return replace(found, turns=turns)

    def delete(self, principal: Principal, conversation_id: str, key_id: str | None = None) -> None:
        """Delete a conversation and its turns.

        Raises:
            NotFound: no such conversation, or another principal's.
        """
        if not self._store.delete(ConversationOwner.of(principal, key_id), conversation_id):
            raise NotFound(f"no conversation {conversation_id!r}", code="conversation.not_found")

    def purge(self) -> int:
        """Delete every conversation past retention (all tenants); returns how many."""
        if self._settings.conversation_retention_days <= 0:
            return 0
        return self._store.purge(self._active_since())

    def ask_stream(
        self,
        principal: Principal,
        conversation_id: str,
        question: str,
        *,
        key_id: str | None = None,
        k: int | None = None,
        filters: Mapping[str, str] | None = None,
        mode: AskMode = "single",
        agent_limits: AgentLimits | None = None,
    ) -> Iterator[AnswerDelta | Answer]:
        """Answer a message of the conversation: pieces, then the final ``Answer`` (with its
        ``rewrite``), which is stored as the next turn.

        Raises:
            NotFound: no such conversation, another principal's, or one past retention.
            InvalidQuery: an empty or too long question.
        """
        conversation = self.get(principal, conversation_id, key_id)  # 404 before anything else
        history = [HistoryTurn(t.standalone_question, t.answer) for t in conversation.turns if not t.redacted]
        stream = self.answer_followup(
            principal, question, history, k=k, filters=filters, mode=mode, agent_limits=agent_limits
        )
        return self._recorded(principal, key_id, conversation_id, stream, mode)

    def answer_followup(
        self,
        principal: Principal,
        question: str,
        history: Sequence[HistoryTurn],
        *,
        k: int | None = None,
        filters: Mapping[str, str] | None = None,
        mode: AskMode = "single",
        agent_limits: AgentLimits | None = None,
    ) -> Iterator[AnswerDelta | Answer]:
        """Answer a question after the given turns, storing nothing: the follow-up is made
        standalone from ``history`` (oldest first), then answered; the final ``Answer`` carries
        the ``rewrite``. Conversations use it with their stored turns; clients that keep the
        history themselves (the OpenAI-compatible endpoint) pass theirs.

        Raises:
            InvalidQuery: an empty or too long question.
        """
        asked = self._search.prepare(question, principal, filters).text
        settings = self._settings
        rewrite = rewrite_followup(
            asked,
            history,
            self._answering.llm(),
            tenant=principal.tenant,
            max_tokens=settings.query_transform_max_tokens,
            timeout=settings.query_transform_timeout,
            max_chars=settings.max_query_chars,
        )
        standalone = rewrite.standalone[: settings.max_query_chars]
        log.info("conversation.rewrite", method=rewrite.method, fallback=rewrite.fallback)
        stream = self._answering.ask_stream(
            standalone, principal, k=k, filters=filters, mode=mode, agent_limits=agent_limits
        )
        return _with_rewrite(stream, rewrite)

    def _recorded(
        self,
        principal: Principal,
        key_id: str | None,
        conversation_id: str,
        stream: Iterator[AnswerDelta | Answer],
        mode: AskMode,
    ) -> Iterator[AnswerDelta | Answer]:
        for item in stream:
            if isinstance(item, Answer):
                rewrite = item.rewrite
                assert rewrite is not None  # answer_followup sets it
                turn = NewTurn(
                    question=rewrite.question,
                    standalone_question=rewrite.standalone,
                    answer=item.answer,
                    citations=item.citations,
                    abstained=item.abstained,
                    model=item.model,
                    mode=mode,
                )
                stored = self._store.add_turn(
                    ConversationOwner.of(principal, key_id),
                    conversation_id,
                    turn,
                    active_since=self._active_since(),
                )
                if stored is None:  # deleted while the answer was being written
                    raise NotFound(f"no conversation {conversation_id!r}", code="conversation.not_found")
            yield item


def _with_rewrite(
    stream: Iterator[AnswerDelta | Answer], rewrite: QuestionRewrite
) -> Iterator[AnswerDelta | Answer]:
    for item in stream:
        if isinstance(item, Answer):
            item = replace(item, rewrite=rewrite, usage=item.usage.plus(rewrite.usage))
        yield item


def _redacted(turn: Turn) -> Turn:
    return replace(turn, answer="", citations=(), redacted=True)
