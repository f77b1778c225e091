"""The one vocabulary of access and metadata tokens, shared by every index and the store.

A document's write ACL uses the same ``u:<user>`` and ``g:<group>`` tokens, without the
tenant-wide ``*``: an empty write ACL grants nobody (owner and admins only; see
:mod:`fathom.permissions`).

A document's ACL becomes tokens (``*`` for the whole tenant, ``u:<user>``, ``g:<group>``); a
principal becomes the tokens it holds; a chunk passes a filter when it belongs to the filter's
tenant, shares at least one ACL token with it (unless the filter has none: an admin) and carries
every metadata term. The indexes, the store's re-check of every chunk read, and
:meth:`fathom.domain.Principal.can_read` all follow this one rule (a property test holds them to it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fathom.domain import Principal
from fathom.index.types import IndexFilter

__all__ = [
    "TENANT_WIDE",
    "document_acl_tokens",
    "document_write_tokens",
    "grants",
    "filter_for",
    "matches",
    "metadata_terms",
    "metadata_tokens",
    "principal_acl_tokens",
]

# The token of a document every member of its tenant may read (an empty ACL).
TENANT_WIDE = "*"


def document_acl_tokens(users: Sequence[str], groups: Sequence[str]) -> tuple[str, ...]:
    """Tokens of a document ACL; an empty ACL means the whole tenant (``*``)."""
    if not users and not groups:
        return (TENANT_WIDE,)
    return tuple(dict.fromkeys([f"u:{u}" for u in users] + [f"g:{g}" for g in groups]))


def document_write_tokens(users: Sequence[str], groups: Sequence[str]) -> tuple[str, ...]:
    """Tokens of a document's write ACL; an empty write ACL grants nobody (no ``*``)."""
    return tuple(dict.fromkeys([f"u:{u}" for u in users] + [f"g:{g}" for g in groups]))


def grants(principal: Principal, tokens: Sequence[str]) -> bool:
    """Whether ``principal`` holds one of ``tokens`` (an ACL's tokens, read or write)."""
    return bool(set(principal_acl_tokens(principal)) & set(tokens))


def principal_acl_tokens(principal: Principal) -> tuple[str, ...]:
    """The ACL tokens a principal holds (every principal holds the tenant-wide token)."""
    tokens = [TENANT_WIDE]
    if principal.user:
        tokens.append(f"u:{principal.user}")
    tokens.extend(f"g:{group}" for group in principal.groups)
    return tuple(dict.fromkeys(tokens))


def metadata_tokens(source: str, mime_type: str, metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """Index tokens ``key=value`` that a ``--filter KEY=VALUE`` matches."""
    tokens = [f"source={source}", f"type={mime_type}"]
    for key, value in metadata.items():
        values = value if isinstance(value, list) else [value]
        tokens.extend(f"{key}={v}" for v in values if isinstance(v, str | int | float | bool))
    return tuple(tokens)


def metadata_terms(filters: Mapping[str, str] | None) -> tuple[str, ...]:
    """The metadata tokens a set of ``key=value`` filters requires, in a stable order."""
    return tuple(f"{key}={value}" for key, value in sorted((filters or {}).items()))


def filter_for(principal: Principal, filters: Mapping[str, str] | None = None) -> IndexFilter:
    """The index filter of what ``principal`` may read, narrowed by metadata ``filters``."""
    return IndexFilter(
        tenant=principal.tenant,
        acl_tokens=None if principal.admin else principal_acl_tokens(principal),
        metadata=metadata_terms(filters),
    )


def matches(where: IndexFilter, tenant: str, acl_tokens: Sequence[str], metadata: Sequence[str] = ()) -> bool:
    """Whether a chunk of ``tenant`` with these tokens passes ``where`` (the rule, in Python)."""
    if tenant != where.tenant:
        return False
    if where.acl_tokens is not None and not set(where.acl_tokens) & set(acl_tokens):
        return False
    return set(where.metadata) <= set(metadata)
