"""API keys in the store of record: created once, kept only as a SHA-256, compared in constant time.

A key looks like ``fth_<prefix>_<secret>``. The prefix (random, not secret) finds the row; the
SHA-256 of the whole key is compared with :func:`hmac.compare_digest`. The secret carries 256
bits of entropy, so a plain (unsalted, fast) hash is enough: nobody can guess a preimage.

A key has a role (``reader``, ``editor``, ``admin``), optional scopes, and an optional expiry.
:meth:`KeyRegistry.rotate` gives a key a new secret under the same id (its role, scopes, owned
documents, conversations and rate-limit budget stay); the previous secret keeps working for a
grace period (0: it stops at once). Create, rotate and revoke are one method each, the place to
record them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from fathom.domain import ROLES, SCOPES, ApiKeyInfo, Principal
from fathom.errors import Conflict, InvalidQuery, KeyExpired, NotFound, Unauthorized
from fathom.store.audit import AuditEvent, append
from fathom.store.database import Store
from fathom.store.schema import ApiKeyRow, utcnow

__all__ = ["DEFAULT_ROTATION_GRACE", "KeyRegistry"]

_KEY_PREFIX = "fth_"
# Compared against when no row matches, so an unknown prefix costs the same hash and compare.
_NO_SUCH_HASH = hashlib.sha256(b"no such key").hexdigest()
# How long the previous secret of a rotated key keeps working unless the rotation says otherwise.
DEFAULT_ROTATION_GRACE = timedelta(hours=24)
# The shortest id prefix ``revoke`` and ``rotate`` accept (a shorter one is too easy to mistype).
_MIN_ID_PREFIX = 4


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _prefix(key: str) -> str:
    """The lookup prefix of a key (``""`` when it is not shaped like one)."""
    return key[len(_KEY_PREFIX) :].split("_", 1)[0] if key.startswith(_KEY_PREFIX) else ""


def _carries(prefix: str) -> ColumnElement[bool]:
    """Rows whose current secret, or previous one during a rotation's grace, has ``prefix``."""
    return or_(ApiKeyRow.prefix == prefix, ApiKeyRow.previous_prefix == prefix)


def _aware(moment: datetime | None) -> datetime | None:
    """``moment`` with a time zone (SQLite hands back naive UTC datetimes)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=utcnow().tzinfo)


def _passed(moment: datetime | None, now: datetime) -> bool:
    aware = _aware(moment)
    return aware is not None and aware <= now


def _info(row: ApiKeyRow, now: datetime | None = None) -> ApiKeyInfo:
    now = now or utcnow()
    expires = _aware(row.expires_at)
    previous = _aware(row.previous_valid_until)
    return ApiKeyInfo(
        key_id=row.id,
        prefix=row.prefix,
        tenant=row.tenant_id,
        user=row.user_id,
        groups=tuple(row.groups or ()),
        admin=row.role == "admin",
        created_at=row.created_at.isoformat(),
        revoked=row.revoked_at is not None,
        role=row.role,
        scopes=tuple(row.scopes) if row.scopes is not None else None,
        expires_at=expires.isoformat() if expires else None,
        expired=_passed(expires, now),
        previous_valid_until=previous.isoformat() if previous and previous > now else None,
    )


def _new_secret() -> tuple[str, str]:
    """A fresh ``(prefix, key)``."""
    prefix = secrets.token_hex(6)
    return prefix, f"{_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


class KeyRegistry:
    """Creates, lists, rotates, revokes and checks API keys."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(
        self,
        *,
        tenant: str,
        user: str | None = None,
        groups: Sequence[str] = (),
        admin: bool = False,
        role: str | None = None,
        scopes: Sequence[str] | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[str, ApiKeyInfo]:
        """Create a key; returns the key itself (shown once, never stored) and its listing.

        ``role`` defaults to ``admin`` when ``admin`` is set, else ``editor`` (what a key
        without the admin flag could do before roles); ``scopes`` None allows every scope.

        Raises:
            InvalidQuery: an unknown role or scope, no scope at all, ``admin`` with another
                role, or an expiry in the past.
        """
        chosen = role or ("admin" if admin else "editor")
        if chosen not in ROLES:
            raise InvalidQuery(f"role must be one of {', '.join(ROLES)}", code="key.invalid_role")
        if admin and chosen != "admin":
            raise InvalidQuery("--admin is the admin role; give one or the other", code="key.invalid_role")
        scope_list = None if scopes is None else sorted(set(scopes))
        if scope_list is not None:
            unknown = sorted(set(scope_list) - set(SCOPES))
            if unknown or not scope_list:
                raise InvalidQuery(
                    f"scopes must be some of {', '.join(SCOPES)}"
                    + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
                    code="key.invalid_scope",
                )
        now = utcnow()
        if _passed(expires_at, now):
            raise InvalidQuery("the expiry must be in the future", code="key.invalid_expiry")
        prefix, key = _new_secret()
        row = ApiKeyRow(
            id=uuid.uuid4().hex,
            prefix=prefix,
            key_hash=_digest(key),
            tenant_id=tenant,
            user_id=user,
            groups=sorted(set(groups)),
            admin=chosen == "admin",
            role=chosen,
            scopes=scope_list,
            created_at=now,
            expires_at=_aware(expires_at),
        )
        with self._store.session() as session:
            session.add(row)
            details = {
                "prefix": prefix,
                "user": user,
                "groups": row.groups,
                "role": chosen,
                "scopes": scope_list,
                "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            }
            append(session, AuditEvent(tenant, "key.create", row.id, details=details))
        return key, _info(row, now)

    def list(self, tenant: str | None = None) -> list[ApiKeyInfo]:
        """Every key (or every key of one tenant), oldest first."""
        with self._store.session() as session:
            query = select(ApiKeyRow).order_by(ApiKeyRow.created_at)
            if tenant is not None:
                query = query.where(ApiKeyRow.tenant_id == tenant)
            now = utcnow()
            return [_info(row, now) for row in session.scalars(query)]

    def revoke(self, key_ref: str) -> ApiKeyInfo:
        """Revoke a key (by id, prefix, or the start of its id); it and any previous secret stop
        working at once.

        Raises:
            NotFound: no such key. Conflict: the reference fits several keys.
        """
        with self._store.session() as session:
            row = _resolve(session, key_ref)
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                append(
                    session, AuditEvent(row.tenant_id, "key.revoke", row.id, details={"prefix": row.prefix})
                )
            row.previous_valid_until = None
            return _info(row)

    def rotate(self, key_ref: str, *, grace: timedelta = DEFAULT_ROTATION_GRACE) -> tuple[str, ApiKeyInfo]:
        """Give a key a new secret under the same id; returns the new key (shown once).

        The previous secret keeps working for ``grace`` (zero: it stops at once); a secret from
        an earlier rotation stops now. Role, scopes, expiry and everything the key owns stay.

        Raises:
            NotFound: no such key. Conflict: the reference fits several keys, or the key is
                revoked or expired (``key.revoked``, ``key.expired``: create a new one instead).
            InvalidQuery: a negative grace period.
        """
        if grace < timedelta(0):
            raise InvalidQuery("the grace period cannot be negative", code="key.invalid_grace")
        with self._store.session() as session:
            row = _resolve(session, key_ref)
            now = utcnow()
            if row.revoked_at is not None:
                raise Conflict("a revoked key cannot be rotated; create a new key", code="key.revoked")
            if _passed(row.expires_at, now):
                raise Conflict("an expired key cannot be rotated; create a new key", code="key.expired")
            prefix, key = _new_secret()
            if grace > timedelta(0):
                row.previous_prefix, row.previous_hash = row.prefix, row.key_hash
                row.previous_valid_until = now + grace
            else:
                row.previous_prefix = row.previous_hash = row.previous_valid_until = None
            grace_seconds = int(grace.total_seconds())
            details = {"old_prefix": row.prefix, "prefix": prefix, "grace_seconds": grace_seconds}
            row.prefix, row.key_hash, row.rotated_at = prefix, _digest(key), now
            append(session, AuditEvent(row.tenant_id, "key.rotate", row.id, details=details))
            return key, _info(row, now)

    def owner(self, key: str) -> tuple[str, str] | None:
        """The tenant and id of the key whose prefix ``key`` carries, valid or not (None: no such
        prefix): to whom a refused key is attributed in the audit log."""
        prefix = _prefix(key)
        if not prefix:
            return None
        with self._store.session() as session:
            found = session.execute(select(ApiKeyRow.tenant_id, ApiKeyRow.id).where(_carries(prefix))).first()
        return (str(found[0]), str(found[1])) if found is not None else None

    def authenticate(self, key: str) -> tuple[str, Principal]:
        """The key's id and principal.

        Raises:
            Unauthorized: the key is malformed, unknown or revoked (one message for all three),
                or the previous secret of a rotated key past its grace period.
            KeyExpired: the key is right but past its expiry (``auth.key_expired``).
        """
        prefix = _prefix(key)
        row: ApiKeyRow | None = None
        if prefix:
            with self._store.session() as session:
                row = session.scalars(select(ApiKeyRow).where(_carries(prefix))).one_or_none()
        previous = row is not None and row.prefix != prefix
        expected = (row.previous_hash if previous else row.key_hash) if row is not None else None
        matches = hmac.compare_digest(expected or _NO_SUCH_HASH, _digest(key))
        now = utcnow()
        if row is None or not matches or row.revoked_at is not None:
            raise Unauthorized("a valid API key is required", code="auth.invalid_key")
        if previous and not (row.previous_valid_until and not _passed(row.previous_valid_until, now)):
            raise Unauthorized(
                "this key was rotated and its grace period is over; use the new key", code="auth.invalid_key"
            )
        if _passed(row.expires_at, now):
            raise KeyExpired("this API key has expired; ask for a new one", code="auth.key_expired")
        principal = Principal(
            tenant=row.tenant_id,
            user=row.user_id,
            groups=tuple(row.groups or ()),
            role=row.role,
            scopes=frozenset(row.scopes) if row.scopes is not None else None,
            key_id=row.id,
        )
        return row.id, principal


def _resolve(session: Session, key_ref: str) -> ApiKeyRow:
    """The key named by its id, its prefix, or (at least 4 characters) the start of its id (a
    trailing ``…``, as a narrow ``fathom keys list`` table cuts ids, is ignored).

    Raises:
        NotFound: no such key (``key.not_found``).
        Conflict: the start of an id that several keys share (``key.ambiguous``).
    """
    ref = key_ref.strip().rstrip("…").rstrip(".").lower()
    row = session.scalars(
        select(ApiKeyRow).where((ApiKeyRow.id == ref) | (ApiKeyRow.prefix == ref))
    ).one_or_none()
    if row is not None:
        return row
    if len(ref) >= _MIN_ID_PREFIX and all(ch in "0123456789abcdef" for ch in ref):
        rows = session.scalars(select(ApiKeyRow).where(ApiKeyRow.id.startswith(ref)).limit(3)).all()
        if len(rows) == 1:
            return rows[0]
        if len(rows) > 1:
            raise Conflict(
                f"{key_ref!r} is the start of several key ids; give more of the id",
                code="key.ambiguous",
            )
    raise NotFound(f"no API key {key_ref!r}", code="key.not_found")
