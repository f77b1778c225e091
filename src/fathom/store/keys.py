"""API keys in the store of record: created once, kept only as a SHA-256, compared in constant time.

A key looks like ``fth_<prefix>_<secret>``. The prefix (random, not secret) finds the row; the
SHA-256 of the whole key is compared with :func:`hmac.compare_digest`. The secret carries 256
bits of entropy, so a plain (unsalted, fast) hash is enough: nobody can guess a preimage.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence

from sqlalchemy import select

from fathom.domain import ApiKeyInfo, Principal
from fathom.errors import NotFound, Unauthorized
from fathom.store.audit import AuditEvent, append
from fathom.store.database import Store
from fathom.store.schema import ApiKeyRow, utcnow

__all__ = ["KeyRegistry"]

_KEY_PREFIX = "fth_"
# Compared against when no row matches, so an unknown prefix costs the same hash and compare.
_NO_SUCH_HASH = hashlib.sha256(b"no such key").hexdigest()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _prefix(key: str) -> str:
    """The lookup prefix of a key (``""`` when it is not shaped like one)."""
    return key[len(_KEY_PREFIX) :].split("_", 1)[0] if key.startswith(_KEY_PREFIX) else ""


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row.id,
        prefix=row.prefix,
        tenant=row.tenant_id,
        user=row.user_id,
        groups=tuple(row.groups or ()),
        admin=row.admin,
        created_at=row.created_at.isoformat(),
        revoked=row.revoked_at is not None,
    )


class KeyRegistry:
    """Creates, lists, revokes and checks API keys."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(
        self, *, tenant: str, user: str | None = None, groups: Sequence[str] = (), admin: bool = False
    ) -> tuple[str, ApiKeyInfo]:
        """Create a key; returns the key itself (shown once, never stored) and its listing."""
        prefix = secrets.token_hex(6)
        key = f"{_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        row = ApiKeyRow(
            id=uuid.uuid4().hex,
            prefix=prefix,
            key_hash=_digest(key),
            tenant_id=tenant,
            user_id=user,
            groups=sorted(set(groups)),
            admin=admin,
            created_at=utcnow(),
        )
        with self._store.session() as session:
            session.add(row)
            details = {"prefix": prefix, "user": user, "groups": row.groups, "admin": admin}
            append(session, AuditEvent(tenant, "key.create", row.id, details=details))
        return key, _info(row)

    def list(self, tenant: str | None = None) -> list[ApiKeyInfo]:
        """Every key (or every key of one tenant), oldest first."""
        with self._store.session() as session:
            query = select(ApiKeyRow).order_by(ApiKeyRow.created_at)
            if tenant is not None:
                query = query.where(ApiKeyRow.tenant_id == tenant)
            return [_info(row) for row in session.scalars(query)]

    def revoke(self, key_id_or_prefix: str) -> ApiKeyInfo:
        """Revoke a key by id or prefix; it stops working at once.

        Raises:
            NotFound: no such key.
        """
        with self._store.session() as session:
            row = session.scalars(
                select(ApiKeyRow).where(
                    (ApiKeyRow.id == key_id_or_prefix) | (ApiKeyRow.prefix == key_id_or_prefix)
                )
            ).one_or_none()
            if row is None:
                raise NotFound(f"no API key {key_id_or_prefix!r}", code="key.not_found")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                append(
                    session, AuditEvent(row.tenant_id, "key.revoke", row.id, details={"prefix": row.prefix})
                )
            return _info(row)

    def owner(self, key: str) -> tuple[str, str] | None:
        """The tenant and id of the key whose prefix ``key`` carries, valid or not (None: no such
        prefix): to whom a refused key is attributed in the audit log."""
        prefix = _prefix(key)
        if not prefix:
            return None
        with self._store.session() as session:
            found = session.execute(
                select(ApiKeyRow.tenant_id, ApiKeyRow.id).where(ApiKeyRow.prefix == prefix)
            ).first()
        return (str(found[0]), str(found[1])) if found is not None else None

    def authenticate(self, key: str) -> tuple[str, Principal]:
        """The key's id and principal.

        Raises:
            Unauthorized: the key is malformed, unknown or revoked (one message for all three).
        """
        prefix = _prefix(key)
        row: ApiKeyRow | None = None
        if prefix:
            with self._store.session() as session:
                row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.prefix == prefix)).one_or_none()
        matches = hmac.compare_digest(row.key_hash if row else _NO_SUCH_HASH, _digest(key))
        if row is None or not matches or row.revoked_at is not None:
            raise Unauthorized("a valid API key is required", code="auth.invalid_key")
        principal = Principal(
            tenant=row.tenant_id, user=row.user_id, groups=tuple(row.groups or ()), admin=row.admin
        )
        return row.id, principal
