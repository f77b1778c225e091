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

    def record_answer(
        self,
        principal: Principal,
        *,
        abstained: bool,
        cited_doc_ids: Sequence[str],
        key_id: str | None = None,
    ) -> str:
        """Remember that ``principal`` (through the API key ``key_id``) received an answer;
        returns the answer id."""
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
                )
            )
        return answer_id

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
    if answer.tenant_id != principal.tenant:
        return False
    if principal.admin:
        return True
    if principal.user is not None:
        return answer.user_id == principal.user
    return key_id is not None and answer.user_id is None and answer.key_id == key_id
