"""Conversations and their turns in the store of record.

A conversation belongs to the principal that created it (see :class:`ConversationOwner`); to
anyone else it does not exist. A turn keeps only what showing it and rewriting the next
follow-up need: the question, its standalone form, the answer text and its citations. Erasure
is built in: deleting a conversation deletes its turns in the same transaction, retention
deletes conversations idle past a cut-off, and deleting a document erases the answers and
quotes of every turn that cited it (:func:`erase_turns_citing`, called by the store's own
document delete).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fathom.domain import Citation, Conversation, Principal, Turn
from fathom.store.schema import ConversationRow, TurnDocumentRow, TurnRow, utcnow

if TYPE_CHECKING:
    from fathom.store.database import Store

__all__ = ["ConversationOwner", "ConversationStore", "NewTurn", "erase_turns_citing"]

_ADD_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ConversationOwner:
    """Who owns a conversation: a tenant and a user, or, for a key without a user, that key.

    The embedded CLI and Python API (no user, no key) own their tenant's local conversations.
    """

    tenant: str
    user: str | None
    key_id: str | None

    @classmethod
    def of(cls, principal: Principal, key_id: str | None) -> ConversationOwner:
        # A key without a user is not one person: it owns only what that very key created.
        return cls(principal.tenant, principal.user, None if principal.user is not None else key_id)


@dataclass(frozen=True, slots=True)
class NewTurn:
    """A turn to append to a conversation."""

    question: str
    standalone_question: str
    answer: str
    citations: tuple[Citation, ...]
    abstained: bool
    model: str
    mode: str


def _owned(owner: ConversationOwner) -> list[ColumnElement[bool]]:
    return [
        ConversationRow.tenant_id == owner.tenant,
        ConversationRow.owner_user.is_(None)
        if owner.user is None
        else ConversationRow.owner_user == owner.user,
        ConversationRow.owner_key.is_(None)
        if owner.key_id is None
        else ConversationRow.owner_key == owner.key_id,
    ]


def _iso(value: datetime) -> str:
    return value.isoformat()


def _turn(row: TurnRow) -> Turn:
    citations = tuple(
        Citation(
            n=int(c["n"]),
            doc_id=str(c["doc_id"]),
            chunk_id=int(c["chunk_id"]),
            source=str(c["source"]),
            title=str(c["title"]),
            quote=str(c["quote"]),
            start=int(c["start"]),
            end=int(c["end"]),
            heading_path=tuple(c.get("heading_path") or ()),
            page=c.get("page"),
        )
        for c in row.citations or []
    )
    return Turn(
        n=row.ordinal,
        question=row.question,
        standalone_question=row.standalone_question,
        answer=row.answer,
        citations=citations,
        abstained=row.abstained,
        model=row.model,
        mode=row.mode,
        created_at=_iso(row.created_at),
        redacted=row.redacted,
    )


class ConversationStore:
    """Reads and writes conversations for their owners (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, owner: ConversationOwner) -> Conversation:
        """A new, empty conversation owned by ``owner``."""
        now = utcnow()
        row = ConversationRow(
            id=uuid.uuid4().hex,
            tenant_id=owner.tenant,
            owner_user=owner.user,
            owner_key=owner.key_id,
            created_at=now,
            updated_at=now,
        )
        with self._store.session() as session:
            session.add(row)
        return Conversation(row.id, _iso(now), _iso(now))

    def get(
        self, owner: ConversationOwner, conversation_id: str, *, active_since: datetime
    ) -> Conversation | None:
        """The conversation with its turns, or None: no such conversation, another owner's, or
        idle since before ``active_since`` (retention)."""
        with self._store.session() as session:
            row = self._find(session, owner, conversation_id, active_since)
            if row is None:
                return None
            turns = session.scalars(
                select(TurnRow).where(TurnRow.conversation_id == row.id).order_by(TurnRow.ordinal)
            ).all()
            return Conversation(
                row.id, _iso(row.created_at), _iso(row.updated_at), tuple(_turn(t) for t in turns)
            )

    def add_turn(
        self, owner: ConversationOwner, conversation_id: str, turn: NewTurn, *, active_since: datetime
    ) -> Turn | None:
        """Append a turn (numbered after the last one); None when the conversation is gone.

        Two messages answered at once both get stored: the one that loses the race for a
        number takes the next.
        """
        for attempt in range(_ADD_ATTEMPTS):
            try:
                return self._add_turn(owner, conversation_id, turn, active_since)
            except IntegrityError:
                if attempt == _ADD_ATTEMPTS - 1:
                    raise
        return None  # pragma: no cover - the loop returns or raises

    def _add_turn(
        self, owner: ConversationOwner, conversation_id: str, turn: NewTurn, active_since: datetime
    ) -> Turn | None:
        with self._store.session() as session:
            row = self._find(session, owner, conversation_id, active_since)
            if row is None:
                return None
            last = session.scalar(select(func.max(TurnRow.ordinal)).where(TurnRow.conversation_id == row.id))
            now = utcnow()
            stored = TurnRow(
                conversation_id=row.id,
                ordinal=(last or 0) + 1,
                question=turn.question,
                standalone_question=turn.standalone_question,
                answer=turn.answer,
                abstained=turn.abstained,
                citations=[c.to_dict() for c in turn.citations],
                model=turn.model,
                mode=turn.mode,
                redacted=False,
                created_at=now,
            )
            session.add(stored)
            session.flush()
            session.add_all(
                TurnDocumentRow(turn_id=stored.id, doc_id=doc_id)
                for doc_id in dict.fromkeys(c.doc_id for c in turn.citations)
            )
            row.updated_at = now
            return _turn(stored)

    def delete(self, owner: ConversationOwner, conversation_id: str) -> bool:
        """Delete a conversation and its turns in one transaction; False when there was none."""
        with self._store.session() as session:
            row = session.scalars(
                select(ConversationRow).where(ConversationRow.id == conversation_id, *_owned(owner))
            ).one_or_none()
            if row is None:
                return False
            _delete_conversations(session, [row.id])
            return True

    def purge(self, idle_before: datetime, *, tenant: str | None = None) -> int:
        """Delete every conversation (of ``tenant``, or of all tenants) idle since before
        ``idle_before``, with its turns; returns how many."""
        with self._store.session() as session:
            query = select(ConversationRow.id).where(ConversationRow.updated_at < idle_before)
            if tenant is not None:
                query = query.where(ConversationRow.tenant_id == tenant)
            ids = list(session.scalars(query).all())
            _delete_conversations(session, ids)
            return len(ids)

    def erase_user(self, tenant: str, user: str) -> int:
        """Delete every conversation of a user of ``tenant`` (an erasure request); returns how many."""
        with self._store.session() as session:
            ids = list(
                session.scalars(
                    select(ConversationRow.id).where(
                        ConversationRow.tenant_id == tenant, ConversationRow.owner_user == user
                    )
                ).all()
            )
            _delete_conversations(session, ids)
            return len(ids)

    @staticmethod
    def _find(
        session: Session, owner: ConversationOwner, conversation_id: str, active_since: datetime
    ) -> ConversationRow | None:
        return session.scalars(
            select(ConversationRow).where(
                ConversationRow.id == conversation_id,
                ConversationRow.updated_at >= active_since,
                *_owned(owner),
            )
        ).one_or_none()


def _delete_conversations(session: Session, ids: Sequence[str]) -> None:
    """Delete conversations and everything under them (explicitly: no reliance on cascades)."""
    for start in range(0, len(ids), 500):
        batch = list(ids[start : start + 500])
        turns = select(TurnRow.id).where(TurnRow.conversation_id.in_(batch))
        session.execute(delete(TurnDocumentRow).where(TurnDocumentRow.turn_id.in_(turns)))
        session.execute(delete(TurnRow).where(TurnRow.conversation_id.in_(batch)))
        session.execute(delete(ConversationRow).where(ConversationRow.id.in_(batch)))


def erase_turns_citing(session: Session, doc_id: str) -> None:
    """Erase the answer and citations of every turn that cites ``doc_id`` (in the caller's
    transaction, the one deleting the document): a deleted document's text is kept nowhere."""
    turns = select(TurnDocumentRow.turn_id).where(TurnDocumentRow.doc_id == doc_id)
    session.execute(
        update(TurnRow)
        .where(TurnRow.id.in_(turns))
        .values(answer="", citations=[], redacted=True)
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(TurnDocumentRow).where(TurnDocumentRow.doc_id == doc_id))
