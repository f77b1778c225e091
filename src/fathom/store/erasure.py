"""Erasing one user's data (GDPR Art. 17): ``fathom erase --tenant T --user U``.

Removed, in one transaction: the user's conversations (questions, standalone questions, answers,
citations), the records of answers they received and every rating they gave or that was given on
those answers. Then one ``user.erased`` audit event records that it happened and how many rows
went, never what they held.

Audit events are not changed: each is hash-chained, and rewriting one would break
``fathom audit verify``. By default (``audit_queries = false``) they hold a keyed HMAC of each
query, not its text; with ``audit_queries = true`` the user's query texts stay in the audit log
until audit retention removes them (docs/privacy.md).
"""

from __future__ import annotations

from sqlalchemy import delete, select

from fathom.store.audit import AuditEvent, append
from fathom.store.conversations import _delete_conversations
from fathom.store.database import Store
from fathom.store.schema import AnswerRow, ConversationRow, FeedbackRow

__all__ = ["ERASED", "erase_user"]

ERASED = "user.erased"


def erase_user(store: Store, tenant: str, user: str) -> dict[str, int]:
    """Delete ``user``'s conversations, answers and feedback in ``tenant``; returns counts."""
    with store.session() as session:
        conversations = list(
            session.scalars(
                select(ConversationRow.id).where(
                    ConversationRow.tenant_id == tenant, ConversationRow.owner_user == user
                )
            )
        )
        _delete_conversations(session, conversations)
        answers = select(AnswerRow.id).where(AnswerRow.tenant_id == tenant, AnswerRow.user_id == user)
        feedback = session.execute(
            delete(FeedbackRow).where(
                FeedbackRow.tenant_id == tenant,
                (FeedbackRow.user_id == user) | FeedbackRow.answer_id.in_(answers),
            )
        )
        removed_answers = session.execute(
            delete(AnswerRow).where(AnswerRow.tenant_id == tenant, AnswerRow.user_id == user)
        )
        counts = {
            "conversations": len(conversations),
            "answers": int(getattr(removed_answers, "rowcount", 0) or 0),
            "feedback": int(getattr(feedback, "rowcount", 0) or 0),
        }
        # The subject is named as the target (the request names them); nothing they wrote is.
        append(session, AuditEvent(tenant, ERASED, target=user, details=counts))
    return counts
