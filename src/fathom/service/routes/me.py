"""/v1/me: who the caller's credential is (the page checks a key with it and shows the result)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from fathom.service.deps import PrincipalDep
from fathom.service.schemas import error_responses

__all__ = ["router"]

router = APIRouter(prefix="/v1/me", tags=["keys"])


class MeOut(BaseModel):
    tenant: str = Field(description="The tenant every request of this credential reads and writes.")
    user: str | None = Field(description="The user (null: a key made without one).")
    role: str = Field(description="`reader`, `editor` or `admin`.")
    groups: list[str] = Field(description="Groups, matched against document ACLs.")
    scopes: list[str] | None = Field(description="What the credential may be used for (null: everything).")
    key_id: str | None = Field(description="The API key's id (null: a signed-in token).")


@router.get(
    "",
    response_model=MeOut,
    summary="The caller's tenant, user, role and scopes",
    description="Checks a credential without touching any document: 200 with who it is, or 401. "
    "The web page calls it when a key is entered and shows the tenant and user in its header.",
    responses=error_responses(401, 429, 503),
)
def me(principal: PrincipalDep) -> MeOut:
    return MeOut(
        tenant=principal.tenant,
        user=principal.user,
        role=principal.role,
        groups=list(principal.groups),
        scopes=None if principal.scopes is None else sorted(principal.scopes),
        key_id=principal.key_id,
    )
