"""Bounds on the free-form fields of requests, as pydantic types shared by HTTP and MCP.

A request over a bound is refused (422) while it is validated, before fathom works on it, and
the bounds appear in the OpenAPI schema and in the MCP tools' input schemas. The body size
limits of the service (``max_request_bytes``, ``max_upload_bytes``) bound the request as a
whole; these bound each part of it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

__all__ = [
    "FIELD_KEY_MAX_CHARS",
    "FIELD_VALUE_MAX_CHARS",
    "FILTERS_MAX_ITEMS",
    "METADATA_MAX_ITEMS",
    "NAME_MAX_CHARS",
    "FieldKey",
    "FieldValue",
    "Filters",
    "Metadata",
    "Name",
    "TextMetadata",
]

FILTERS_MAX_ITEMS = 32
METADATA_MAX_ITEMS = 64
METADATA_LIST_MAX_ITEMS = 256
FIELD_KEY_MAX_CHARS = 256
# As long as the longest `source` (a filter may name one).
FIELD_VALUE_MAX_CHARS = 4096
NAME_MAX_CHARS = 256

FieldKey = Annotated[str, StringConstraints(min_length=1, max_length=FIELD_KEY_MAX_CHARS)]
FieldValue = Annotated[str, StringConstraints(max_length=FIELD_VALUE_MAX_CHARS)]
# A user or group name in an ACL.
Name = Annotated[str, StringConstraints(max_length=NAME_MAX_CHARS)]

Filters = Annotated[
    dict[FieldKey, FieldValue],
    Field(
        max_length=FILTERS_MAX_ITEMS,
        description=f"Exact metadata matches, all of which must hold, e.g. {{'type': 'text/markdown'}}: "
        f"at most {FILTERS_MAX_ITEMS}, keys up to {FIELD_KEY_MAX_CHARS} characters, values up to "
        f"{FIELD_VALUE_MAX_CHARS}.",
    ),
]

MetadataValue = (
    FieldValue | int | float | bool | Annotated[list[FieldValue], Field(max_length=METADATA_LIST_MAX_ITEMS)]
)
Metadata = Annotated[
    dict[FieldKey, MetadataValue],
    Field(
        max_length=METADATA_MAX_ITEMS,
        description=f"Key/value labels that search and ask can filter on: at most {METADATA_MAX_ITEMS} "
        f"keys of up to {FIELD_KEY_MAX_CHARS} characters; text values up to {FIELD_VALUE_MAX_CHARS} "
        f"characters, lists up to {METADATA_LIST_MAX_ITEMS} of them.",
    ),
]
# Metadata whose values are all text (MCP's ingest_text).
TextMetadata = Annotated[dict[FieldKey, FieldValue], Field(max_length=METADATA_MAX_ITEMS)]
