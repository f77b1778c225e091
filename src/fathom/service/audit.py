"""What the HTTP service records in the audit log (:mod:`fathom.store.audit` owns the log).

Routes call these with the authenticated :class:`~fathom.service.deps.Caller`: searches and
asks with the documents they returned or cited, refused credentials, and their admins' changes.
Writes inside the store (documents, keys) record themselves in their own transaction, as the
actor set with :func:`acting_as`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog

from fathom.errors import FathomError, StorageFull
from fathom.store.audit import NO_TENANT, Actor, AuditEvent, acting, doc_ids

if TYPE_CHECKING:  # deps records refused credentials through this module
    from fathom.domain import Answer, Hit
    from fathom.service.deps import Caller, Service

log = structlog.get_logger(__name__)

__all__ = [
    "acting_as",
    "actor_of",
    "record",
    "record_answer",
    "record_auth_failure",
    "record_search",
    "recording_failure",
]


def actor_of(caller: Caller) -> Actor:
    """The audit actor of an authenticated request: its token's subject, else its API key."""
    if caller.subject is not None:
        return Actor(kind="token", id=caller.subject, user=caller.principal.user)
    return Actor(kind="key", id=caller.key_id, user=caller.principal.user)


@contextmanager
def acting_as(caller: Caller) -> Iterator[Actor]:
    """Store writes inside (document deletes ...) are recorded as done by ``caller``."""
    with acting(actor_of(caller)) as actor:
        yield actor


def record(
    service: Service,
    caller: Caller,
    action: str,
    target: str | None = None,
    *,
    outcome: str = "ok",
    details: Mapping[str, Any] | None = None,
    flush: bool = True,
) -> None:
    """Append one event of ``caller``'s tenant (its own transaction; ``flush=False``: see
    :meth:`~fathom.store.audit.AuditLog.record`)."""
    event = AuditEvent(
        caller.principal.tenant, action, target, outcome, dict(details or {}), actor_of(caller)
    )
    service.fathom.audit.record(event, flush=flush)


@contextmanager
def recording_failure(
    service: Service, caller: Caller, action: str, target: str | None = None
) -> Iterator[None]:
    """Record ``action`` with the error's code as its outcome when the block raises a FathomError
    (a refused search, a denied delete); success is recorded by the caller, with its details."""
    try:
        yield
    except FathomError as exc:
        with _unless_disk_full(action):
            record(service, caller, action, target, outcome=exc.code)
        raise


@contextmanager
def _unless_disk_full(action: str) -> Iterator[None]:
    """Reads keep answering on a full disk (docs/service.md): their event is then not recorded,
    and the log says so. Changes never get here: they fail whole, their event with them."""
    try:
        yield
    except StorageFull:
        log.warning("audit.not_recorded", action=action, code=StorageFull.code)


def record_search(service: Service, caller: Caller, query: str, hits: Sequence[Hit]) -> None:
    """A search: the query (or its hash) and the documents returned, best first."""
    with _unless_disk_full("search"):
        details = {**service.fathom.audit.query_details(query), "doc_ids": doc_ids([h.doc_id for h in hits])}
        record(service, caller, "search", details=details, flush=False)


def record_answer(
    service: Service, caller: Caller, query: str | None, answer: Answer, answer_id: str
) -> None:
    """An answer given: the question (or its hash) and the documents it cites."""
    with _unless_disk_full("ask"):
        details: dict[str, Any] = service.fathom.audit.query_details(query) if query is not None else {}
        details["doc_ids"] = doc_ids([c.doc_id for c in answer.citations])
        details["abstained"] = answer.abstained
        record(service, caller, "ask", answer_id, details=details, flush=False)


def record_auth_failure(
    service: Service, credential: str, token: bool, code: str, client: str | None
) -> None:
    """A refused credential, in the tenant of the API key it names (none for tokens: the claims
    of a refused token cannot be trusted). Never the credential itself."""
    tenant, target = NO_TENANT, None
    if not token:
        owner = service.fathom.keys.owner(credential)
        if owner is not None:
            tenant, target = owner
    details = {"credential": "token" if token else "key", "code": code, "client": client}
    service.fathom.audit.record(
        AuditEvent(tenant, "auth.failed", target, outcome=code, details=details, actor=Actor(kind="unknown"))
    )
