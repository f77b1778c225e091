"""/v1/audit: a tenant's audit trail, for its admins (see docs/audit.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from fathom.errors import InvalidQuery, PermissionDenied
from fathom.service.deps import FathomDep, PrincipalDep
from fathom.service.schemas import error_responses
from fathom.store.audit import ACTIONS, AuditRecord

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])

_MAX_PAGE = 1000


class ActorOut(BaseModel):
    kind: str = Field(
        description="`key` (an API key), `token` (an OIDC token), `cli` (a command on the server), "
        "`job` (an ingestion job committing an upload) or `unknown` (a refused credential)."
    )
    id: str | None = Field(description="The key's id, the token's `sub`, the OS user, or the job's id.")
    user: str | None = Field(description="The caller's user, when it has one.")


class AuditEventOut(BaseModel):
    id: int = Field(description="Row id; events are listed in its order.")
    tenant: str | None = Field(description="The tenant (null: a refused credential of no known tenant).")
    seq: int = Field(description="Position in the tenant's hash chain (1, 2, ...).")
    time: str = Field(description="UTC, ISO 8601 with microseconds.")
    actor: ActorOut
    action: str = Field(description="One of: " + ", ".join(f"`{a}`" for a in ACTIONS) + ".")
    target: str | None = Field(description="What the action was on: a document, key, webhook or answer id.")
    request_id: str | None = Field(description="The HTTP request (its `X-Request-ID`), when there was one.")
    outcome: str = Field(description="`ok`, or the error code the action was refused with.")
    details: dict[str, Any] = Field(
        description="Per action: `doc_ids` returned or cited, `query_hmac` (or `query` with "
        "`audit_queries = true`), `source`, `acl` ... Never document text, keys or tokens."
    )
    prev_hash: str = Field(description="`hash` of the tenant's previous event.")
    hash: str = Field(description="SHA-256 of `prev_hash` and the event's canonical JSON.")

    @classmethod
    def of(cls, record: AuditRecord) -> AuditEventOut:
        return cls.model_validate(record.to_dict())


class AuditPage(BaseModel):
    events: list[AuditEventOut] = Field(description="Oldest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when this page is the last."
    )


@router.get(
    "",
    response_model=AuditPage,
    summary="The tenant's audit trail (tenant admins)",
    description="Who searched, asked, changed or deleted what in the caller's tenant, oldest first, "
    "filtered and paged: follow `next_cursor` until it is null. Searches and asks list the document "
    "ids returned or cited; query text appears only when the operator set `audit_queries = true` "
    "(otherwise an HMAC of it). Only admins of the tenant may read it (403 `audit.admin_only`); "
    "`fathom audit verify` checks the hash chain.",
    responses=error_responses(400, 401, 403, 422, 429, 503),
)
def list_events(
    fathom: FathomDep,
    principal: PrincipalDep,
    since: Annotated[
        datetime | None,
        Query(description="Events at or after this time (ISO 8601; UTC unless an offset is given)."),
    ] = None,
    until: Annotated[datetime | None, Query(description="Events before this time.")] = None,
    actor: Annotated[
        str | None, Query(max_length=256, description="Only this actor: a key id, a token `sub` or a user.")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="Only this action, e.g. `search` or `document.delete`.")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=32, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=_MAX_PAGE, description="Events per page.")] = 100,
) -> AuditPage:
    if not principal.admin:
        raise PermissionDenied(
            "only an admin of the tenant may read its audit trail", code="audit.admin_only"
        )
    if cursor is not None and not cursor.isdigit():
        raise InvalidQuery("cursor must be a next_cursor this endpoint returned", code="audit.invalid_cursor")
    records = fathom.audit.events(
        tenant=principal.tenant,
        since=since,
        until=until,
        actor=actor,
        action=action,
        after=int(cursor or 0),
        limit=limit + 1,
    )
    more = len(records) > limit
    records = records[:limit]
    return AuditPage(
        events=[AuditEventOut.of(r) for r in records],
        next_cursor=str(records[-1].id) if more and records else None,
    )
