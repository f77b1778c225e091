"""/v1/documents: upload (multipart or JSON, as a durable job), list, get, delete."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from fathom.domain import text_source
from fathom.guard.fields import Metadata
from fathom.service.audit import acting_as, record, recording_failure
from fathom.service.deps import CallerDep, FathomDep, PrincipalDep, ServiceDep
from fathom.service.schemas import (
    AclIn,
    DeletedOut,
    DocumentAccepted,
    DocumentIn,
    DocumentList,
    DocumentOut,
    PassageOut,
    WriteAclIn,
    error_responses,
)
from fathom.store.jobs import request_hash

__all__ = ["router"]

router = APIRouter(prefix="/v1/documents", tags=["documents"])

# The same bounds as the JSON body's models, so both forms of the upload document them.
_ACL_SCHEMA: dict[str, Any] = AclIn.model_json_schema()
_WRITE_ACL_SCHEMA: dict[str, Any] = WriteAclIn.model_json_schema()
_METADATA_SCHEMA: dict[str, Any] = TypeAdapter(Metadata).json_schema()
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["text"],
                    "additionalProperties": False,
                    "properties": {
                        "text": {"type": "string", "minLength": 1},
                        "title": {"type": "string", "maxLength": 1024},
                        "source": {"type": "string", "minLength": 1, "maxLength": 4096},
                        "acl": _ACL_SCHEMA,
                        "write_acl": _WRITE_ACL_SCHEMA,
                        "metadata": _METADATA_SCHEMA,
                    },
                },
                "example": {
                    "text": "# Key rotation\n\nKeys are rotated every 90 days.",
                    "title": "Key rotation",
                    "source": "wiki/key-rotation.md",
                    "acl": {"users": [], "groups": ["security"]},
                    "metadata": {"team": "security"},
                },
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string", "maxLength": 1024},
                        "source": {
                            "type": "string",
                            "maxLength": 4096,
                            "description": "Default: the file name.",
                        },
                        "acl": _ACL_SCHEMA,
                        "write_acl": _WRITE_ACL_SCHEMA,
                        "metadata": _METADATA_SCHEMA,
                    },
                },
                "encoding": {
                    "acl": {"contentType": "application/json"},
                    "write_acl": {"contentType": "application/json"},
                    "metadata": {"contentType": "application/json"},
                },
            },
        },
    }
}


_FORM_FIELDS = {"file", "title", "source", "acl", "write_acl", "metadata"}


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": message}])


def _json_field(raw: Any, field: str) -> Any:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise _invalid(field, "must be a JSON string")
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise _invalid(field, "must be valid JSON") from None


async def _read_upload(request: Request, max_bytes: int) -> tuple[DocumentIn, bytes]:
    """The upload as a validated description plus its raw content bytes."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            document = DocumentIn.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_input=False)) from None
        return document, document.text.encode("utf-8")
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=16, max_part_size=max_bytes) as form:
            unknown = sorted(set(form.keys()) - _FORM_FIELDS)
            if unknown:
                raise _invalid(unknown[0], "unknown form field")
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise _invalid("file", "a file part named 'file' is required")
            content = await upload.read()  # an empty file fails its job with a reason
            fields = {
                "text": "-",
                "title": form.get("title") or None,
                "source": form.get("source") or upload.filename or None,
                "acl": _json_field(form.get("acl"), "acl"),
                "write_acl": _json_field(form.get("write_acl"), "write_acl"),
                "metadata": _json_field(form.get("metadata"), "metadata"),
            }
        try:
            document = DocumentIn.model_validate(fields)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_input=False)) from None
        return document, content
    raise StarletteHTTPException(415, "send application/json or multipart/form-data")


@router.post(
    "",
    status_code=202,
    response_model=DocumentAccepted,
    summary="Upload a document (ingested by a durable job)",
    description="Multipart (`file` plus optional `title`, `source`, `acl`, `write_acl` and `metadata` "
    "JSON fields) or JSON `{text, title, source, acl, write_acl, metadata}`. The document becomes "
    "searchable when its job succeeds (`GET /v1/jobs/{job_id}`). A repeat with the same "
    "`Idempotency-Key` returns the first response; the same key with a different body is a 409. "
    "Needs the `editor` or `admin` role and the `write` scope (403 `document.write_denied` for a "
    "reader, `auth.scope_missing` for a key without `write`). A new document is owned by the "
    "caller's user (its key, for a key without a user). Uploading to the `source` of an existing "
    "document replaces it (text, title, metadata, ACL, and `write_acl` when given): only its owner, "
    "an editor named in its `write_acl` or an admin may (403 `document.write_denied` for other "
    "readers; 409 `document.source_taken` when the caller may not read it). Changing a document's "
    "ACL is such an upload with the same text and a new `acl` or `write_acl`.",
    openapi_extra=_UPLOAD_BODY,
    responses=error_responses(400, 401, 403, 409, 413, 415, 422, 429, 507),
)
async def upload_document(
    request: Request,
    response: Response,
    service: ServiceDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> DocumentAccepted:
    document, content = await _read_upload(request, service.settings.max_upload_bytes)
    source = document.source or text_source(content)
    acl = document.acl
    users = tuple(acl.users) if acl else ()
    groups = tuple(acl.groups) if acl else ()
    write = document.write_acl
    writers = (sorted(write.users), sorted(write.groups)) if write is not None else None
    metadata = document.metadata or {}
    idempotency = None
    if idempotency_key:
        digest = request_hash(
            content,
            source,
            document.title or "",
            json.dumps([sorted(users), sorted(groups), writers]),
            json.dumps(metadata, sort_keys=True),
        )
        idempotency = (caller.key_id, idempotency_key, digest)
    job, new = await run_in_threadpool(
        service.fathom.submit_document,
        content,
        source=source,
        title=document.title,
        metadata=metadata,
        acl_users=users,
        acl_groups=groups,
        principal=caller.principal,
        idempotency=idempotency,
        write_acl=(tuple(writers[0]), tuple(writers[1])) if writers is not None else None,
    )
    if new:
        details = {"job_id": job.job_id, "source": source}
        await run_in_threadpool(record, service, caller, "document.upload", job.document_id, details=details)
        service.metrics.jobs_enqueued.inc()
        service.workers.notify()
    else:
        service.metrics.idempotent_replays.inc()
        response.headers["Idempotent-Replayed"] = "true"
    return DocumentAccepted(document_id=job.document_id, job_id=job.job_id, status=job.status)


@router.get(
    "",
    response_model=DocumentList,
    summary="List the documents the caller may read",
    responses=error_responses(401, 403, 429),
)
def list_documents(fathom: FathomDep, principal: PrincipalDep) -> DocumentList:
    return DocumentList(documents=[DocumentOut.of(doc) for doc in fathom.documents(principal=principal)])


@router.get(
    "/{document_id}",
    response_model=DocumentOut,
    summary="One document's details",
    responses=error_responses(401, 403, 404, 429),
)
def get_document(document_id: str, fathom: FathomDep, principal: PrincipalDep) -> DocumentOut:
    return DocumentOut.of(fathom.document(document_id, principal=principal))


@router.get(
    "/{document_id}/passage",
    response_model=PassageOut,
    summary="A cited quote in context",
    description="The text around `[start, end)` of a document (offsets as in a citation or search hit): "
    "the chunks the quote touches plus `neighbours` chunks on each side, with the title, heading path "
    "and page. The same tenant and ACL rules as every read: a document the caller may not read is a "
    "404, and so are offsets outside the document's chunks and an empty range (`end` not after "
    "`start`: code `passage.invalid_range`).",
    responses=error_responses(401, 403, 404, 422, 429),
)
def get_passage(
    document_id: str,
    fathom: FathomDep,
    principal: PrincipalDep,
    start: Annotated[int, Query(ge=0, le=2**53, description="Document offset where the quote begins.")],
    end: Annotated[int, Query(ge=1, le=2**53, description="Offset where the quote ends, after start.")],
    neighbours: Annotated[int, Query(ge=0, le=5, description="Chunks shown on each side.")] = 1,
) -> PassageOut:
    passage = fathom.passage(document_id, start, end, neighbours=neighbours, principal=principal)
    return PassageOut.of(passage)


@router.delete(
    "/{document_id}",
    response_model=DeletedOut,
    summary="Delete a document (its owner, editors in its write ACL, admins)",
    description="Admins delete any document of their tenant; editors the ones they own or whose "
    "`write_acl` names them; readers none (403 `document.delete_denied`; `auth.scope_missing` for a "
    "key without the `write` scope). A document the caller may not read is a 404.",
    responses=error_responses(401, 403, 404, 429),
)
def delete_document(document_id: str, service: ServiceDep, caller: CallerDep) -> DeletedOut:
    # The delete records itself in its transaction; a refused one is recorded here.
    with acting_as(caller), recording_failure(service, caller, "document.delete", document_id):
        return DeletedOut(document_id=service.fathom.delete(document_id, principal=caller.principal))
