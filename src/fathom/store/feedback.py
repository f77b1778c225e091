"""Answers given over the service and the feedback on them.

Only ids are kept for an answer (who received it, which documents it cited), never the
question or the answer text.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fathom.domain import Principal
from fathom.errors import NotFound
from fathom.store.database import Store
from fathom.store.schema import AnswerRow, FeedbackRow, utcnow

__all__ = ["FeedbackLog"]


class FeedbackLog:
    """Records answers and accepts feedback from the principal who received each one."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record_answer(self, principal: Principal, *, abstained: bool, cited_doc_ids: Sequence[str]) -> str:
        """Remember that ``principal`` received an answer; returns the answer id."""
        answer_id = uuid.uuid4().hex
        with self._store.session() as session:
            session.add(
                AnswerRow(
                    id=answer_id,
                    tenant_id=principal.tenant,
                    user_id=principal.user,
                    abstained=abstained,
                    cited_doc_ids=list(dict.fromkeys(cited_doc_ids)),
                    created_at=utcnow(),
                )
            )
        return answer_id

    def add(self, principal: Principal, answer_id: str, rating: str, comment: str | None) -> int:
        """Store a rating of an answer the principal received (an admin: any of its tenant).

        Raises:
            NotFound: no such answer, or one given to someone else.
        """
        with self._store.session() as session:
            answer = session.get(AnswerRow, answer_id)
            mine = answer is not None and answer.tenant_id == principal.tenant
            if mine and not principal.admin:
                mine = answer is not None and answer.user_id == principal.user
            if answer is None or not mine:
                raise NotFound(f"no answer {answer_id!r}", code="answer.not_found")
            row = FeedbackRow(
                answer_id=answer_id,
                tenant_id=principal.tenant,
                user_id=principal.user,
                rating=rating,
                comment=comment,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return int(row.id)
