"""Answers given over the service, the feedback on them, and their usage rollup.

Only ids and counts are kept for an answer (who received it, which documents it cited, the
model, tokens, cost, whether it came from the cache), never the question or the answer text.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Integer, cast, func, select

from fathom import permissions
from fathom.domain import Answer, Principal, Usage
from fathom.errors import NotFound
from fathom.store.database import Store
from fathom.store.schema import AnswerRow, FeedbackRow, utcnow

__all__ = ["FeedbackLog", "UsageGroup", "UsageTotal"]

UsageGroup = Literal["user", "day"]


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """Answers and their LLM usage for one user (``key`` None: keys without a user) or one
    UTC day (``key`` ``YYYY-MM-DD``). ``cost`` is None when no answer had a priced model."""

    key: str | None
    answers: int
    cached: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None


class FeedbackLog:
    """Records answers and accepts feedback from the principal who received each one."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record_answer(
        self,
        principal: Principal,
        *,
        abstained: bool,
        cited_doc_ids: Sequence[str],
        key_id: str | None = None,
        usage: Usage | None = None,
        model: str | None = None,
        cached: bool = False,
    ) -> str:
        """Remember that ``principal`` (through the API key ``key_id``) received an answer;
        returns the answer id."""
        usage = usage or Usage()
        answer_id = uuid.uuid4().hex
        with self._store.session() as session:
            session.add(
                AnswerRow(
                    id=answer_id,
                    tenant_id=principal.tenant,
                    user_id=principal.user,
                    key_id=key_id,
                    abstained=abstained,
                    cited_doc_ids=list(dict.fromkeys(cited_doc_ids)),
                    created_at=utcnow(),
                    model=model,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    cost=usage.cost,
                    cached=cached,
                )
            )
        return answer_id

    def record(self, principal: Principal, answer: Answer, *, key_id: str | None = None) -> str:
        """:meth:`record_answer` for a final answer: its citations, model, usage and cache hit."""
        return self.record_answer(
            principal,
            abstained=answer.abstained,
            cited_doc_ids=[c.doc_id for c in answer.citations],
            key_id=key_id,
            usage=answer.usage,
            model=answer.model,
            cached=answer.cached,
        )

    def usage(self, principal: Principal, since: datetime, group_by: UsageGroup) -> list[UsageTotal]:
        """The tenant's answers since ``since`` with their tokens and cost, per user or per UTC
        day (for charge-back); tenant admins only.

        Raises:
            PermissionDenied: the principal is not an admin of its tenant.
        """
        permissions.require_admin(
            principal, "only an admin key may read the tenant's usage", "usage.admin_only"
        )
        if group_by == "user":
            key: Any = AnswerRow.user_id
        elif self._store.engine.dialect.name == "postgresql":
            key = func.to_char(func.timezone("UTC", AnswerRow.created_at), "YYYY-MM-DD")
        else:  # SQLite keeps the UTC time as text: its date() reads it
            key = func.date(AnswerRow.created_at)
        query = (
            select(
                key,
                func.count(AnswerRow.id),
                func.sum(cast(AnswerRow.cached, Integer)),
                func.coalesce(func.sum(AnswerRow.prompt_tokens), 0),
                func.coalesce(func.sum(AnswerRow.completion_tokens), 0),
                func.sum(AnswerRow.cost),
            )
            .where(AnswerRow.tenant_id == principal.tenant, AnswerRow.created_at >= since)
            .group_by(key)
            .order_by(key)
        )
        with self._store.connection() as conn:
            rows = conn.execute(query).all()
        return [
            UsageTotal(
                key=None if group is None else str(group),
                answers=int(answers),
                cached=int(cached or 0),
                prompt_tokens=int(prompt),
                completion_tokens=int(completion),
                cost=None if cost is None else round(float(cost), 8),
            )
            for group, answers, cached, prompt, completion, cost in rows
        ]

    def add(
        self,
        principal: Principal,
        answer_id: str,
        rating: str,
        comment: str | None,
        *,
        key_id: str | None = None,
    ) -> str:
        """Store a rating of an answer the principal received; returns the feedback's public id.

        Who received an answer: an admin of its tenant may rate any answer of the tenant; a
        principal with a user, the answers given to that user (through any of its keys); a
        principal without a user, only the answers given to the very key ``key_id`` (keys
        without a user are not one person, so they never match each other).

        Raises:
            NotFound: no such answer, or one given to someone else.
        """
        with self._store.session() as session:
            answer = session.get(AnswerRow, answer_id)
            if answer is None or not _received(answer, principal, key_id):
                raise NotFound(f"no answer {answer_id!r}", code="answer.not_found")
            public_id = uuid.uuid4().hex
            session.add(
                FeedbackRow(
                    public_id=public_id,
                    answer_id=answer_id,
                    tenant_id=principal.tenant,
                    user_id=principal.user,
                    rating=rating,
                    comment=comment,
                    created_at=utcnow(),
                )
            )
            return public_id


def _received(answer: AnswerRow, principal: Principal, key_id: str | None) -> bool:
    """Whether ``principal`` (calling with the key ``key_id``) received ``answer`` (see ``add``)."""
    return permissions.may_rate(
        principal, key_id, tenant=answer.tenant_id, user=answer.user_id, answer_key=answer.key_id
    )
