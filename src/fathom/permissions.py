"""Who may do what: per-tenant roles, credential scopes and document write permission.

The one place that decides; the store, the upload path, deletes, feedback, webhooks and usage
ask here. Reading follows the read ACL (:meth:`fathom.domain.Principal.can_read` and
:mod:`fathom.index.vocabulary`); everything that changes a document follows this table:

=========  ==========================================================================
role       may
=========  ==========================================================================
reader     search, ask, read documents and jobs, keep its own conversations, rate the
           answers it received. Never adds, replaces or deletes a document, even one it
           created while it had another role.
editor     what a reader may, and add documents (owned by its user, or by its key when
           the key has no user); replace, change the ACLs of, or delete the documents it
           owns or whose write ACL names its user or one of its groups.
admin      everything in its tenant (reads every document, writes every document,
           webhooks, usage, rating any answer of the tenant).
=========  ==========================================================================

Scopes narrow a credential further, whatever its role: ``search`` (search, read documents,
passages and jobs), ``ask`` (ask, conversations, feedback), ``write`` (upload, replace, ACL
change, delete) and ``admin`` (webhooks, usage). A principal without scopes has them all.

Each refusal is a :class:`~fathom.errors.PermissionDenied` (403) with a stable code, except
that a document the caller may not read does not exist for it (404, or 409
``document.source_taken`` for an upload to its source): a refusal never reveals a hidden document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fathom.domain import ROLES, SCOPES, Principal
from fathom.errors import Conflict, NotFound, PermissionDenied
from fathom.index.vocabulary import document_write_tokens, grants

__all__ = [
    "ROLES",
    "SCOPES",
    "DocumentAccess",
    "check_create",
    "check_delete",
    "check_write",
    "highest_role",
    "may_rate",
    "may_write",
    "owns",
    "require_admin",
    "require_scope",
]

_SCOPE_MESSAGES = {
    "search": "this key may not search or read documents (it lacks the 'search' scope)",
    "ask": "this key may not ask or rate answers (it lacks the 'ask' scope)",
    "write": "this key is read-only (it lacks the 'write' scope)",
    "admin": "this key may not administer its tenant (it lacks the 'admin' scope)",
}


@dataclass(frozen=True, slots=True)
class DocumentAccess:
    """What write decisions need of a stored document (no text)."""

    tenant: str
    acl_users: Sequence[str] = ()
    acl_groups: Sequence[str] = ()
    owner_user: str | None = None
    owner_key: str | None = None
    write_users: Sequence[str] = ()
    write_groups: Sequence[str] = ()


def highest_role(roles: Sequence[str]) -> str | None:
    """The highest of ``roles`` that fathom knows (None: none of them)."""
    given = set(roles)
    ranked = [role for role in ROLES if role in given]
    return ranked[-1] if ranked else None


def require_scope(principal: Principal, scope: str) -> None:
    """Refuse a credential used for what its scopes leave out.

    Raises:
        PermissionDenied: ``auth.scope_missing``.
    """
    assert scope in SCOPES, scope
    if not principal.has_scope(scope):
        raise PermissionDenied(_SCOPE_MESSAGES[scope], code="auth.scope_missing")


def require_admin(principal: Principal, message: str, code: str) -> None:
    """Refuse tenant administration (webhooks, usage) to all but admins with the ``admin`` scope.

    Raises:
        PermissionDenied: ``code`` when the principal is no admin; ``auth.scope_missing`` when
            its credential lacks the ``admin`` scope.
    """
    if principal.role != "admin":
        raise PermissionDenied(message, code=code)
    require_scope(principal, "admin")


def owns(principal: Principal, document: DocumentAccess) -> bool:
    """Whether ``principal`` created ``document``: the same user in the same tenant, or, for a
    document created by a key without a user, that very key (used without a user)."""
    if principal.tenant != document.tenant:
        return False
    if document.owner_user is not None:
        return principal.user is not None and principal.user == document.owner_user
    return (
        document.owner_key is not None and principal.user is None and principal.key_id == document.owner_key
    )


def may_write(principal: Principal, document: DocumentAccess) -> bool:
    """Whether ``principal``'s role lets it replace, re-ACL or delete ``document`` (scopes and
    read access aside): an admin of its tenant, or an editor that owns it or is in its write ACL."""
    if principal.tenant != document.tenant or principal.role == "reader":
        return False
    if principal.role == "admin":
        return True
    return owns(principal, document) or grants(
        principal, document_write_tokens(document.write_users, document.write_groups)
    )


def check_create(principal: Principal) -> None:
    """Refuse to let ``principal`` add a document.

    Raises:
        PermissionDenied: ``auth.scope_missing`` (no ``write`` scope), or
            ``document.write_denied`` (a reader).
    """
    require_scope(principal, "write")
    if principal.role == "reader":
        raise PermissionDenied(
            "readers may search and ask but not add documents", code="document.write_denied"
        )


def check_write(principal: Principal, document: DocumentAccess, *, changes: bool = True) -> None:
    """Refuse to let ``principal`` replace ``document`` (its text, title, metadata or ACLs).

    ``changes=False`` (the upload is the same text with the same ACLs) checks only that the
    principal may read the document and has the ``write`` scope.

    Raises:
        Conflict: the principal may not even read the document: to it, the source is just
            taken (``document.source_taken``; the document's existence is not revealed).
        PermissionDenied: ``auth.scope_missing``, or ``document.write_denied`` (a reader, or
            an editor that neither owns the document nor is in its write ACL).
    """
    if not principal.can_read(document.tenant, document.acl_users, document.acl_groups):
        raise Conflict("this source is taken; choose another source name", code="document.source_taken")
    require_scope(principal, "write")
    if changes and not may_write(principal, document):
        raise PermissionDenied(
            "only the document's owner, an editor in its write ACL or an admin may replace it or "
            "change its ACL",
            code="document.write_denied",
        )


def check_delete(principal: Principal, document: DocumentAccess, name: str) -> None:
    """Refuse to let ``principal`` delete ``document`` (``name``: how the caller named it).

    Raises:
        NotFound: the principal may not read the document (``document.not_found``).
        PermissionDenied: ``auth.scope_missing``, or ``document.delete_denied`` (a reader, or
            an editor that neither owns the document nor is in its write ACL).
    """
    if not principal.can_read(document.tenant, document.acl_users, document.acl_groups):
        raise NotFound(f"no document {name!r}", code="document.not_found")
    require_scope(principal, "write")
    if not may_write(principal, document):
        raise PermissionDenied(
            "only the document's owner, an editor in its write ACL or an admin may delete it",
            code="document.delete_denied",
        )


def may_rate(
    principal: Principal, key_id: str | None, *, tenant: str, user: str | None, answer_key: str | None
) -> bool:
    """Whether ``principal`` (calling with the key ``key_id``) may rate an answer given in
    ``tenant`` to ``user`` through the key ``answer_key``: whoever received it (any role: rating
    changes no document), or an admin of its tenant. A principal without a user received only
    the answers given through its own key to no user."""
    if tenant != principal.tenant:
        return False
    if principal.admin:
        return True
    if principal.user is not None:
        return user == principal.user
    return key_id is not None and user is None and answer_key == key_id
