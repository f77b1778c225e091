"""The one exception tree of fathom.

Every error a user can see has a stable ``code`` (for scripts and the HTTP API)
and a human ``message``. Internals, keys and raw provider errors never go into
either.

    FathomError
    ├── ConfigError            bad or missing settings
    ├── IngestError            one source could not be ingested
    │   └── UnsupportedFormat  the content is not a format fathom reads
    ├── InvalidQuery           a query fathom refuses (empty, too long)
    ├── NotFound               no such document (or one the caller may not read)
    ├── Unauthorized           no valid API key (HTTP 401)
    │   └── KeyExpired         the API key was valid but its expiry has passed
    ├── PermissionDenied       the caller may read the thing but not change it (HTTP 403)
    ├── Conflict               the request clashes with existing state (HTTP 409)
    ├── BackendUnavailable     a store, index or model could not be reached
    ├── StorageFull            the disk (or quota) is full; nothing partial was written (HTTP 507)
    ├── ProviderError          a model provider failed
    └── LimitExceeded          a configured limit was hit (``retry_after`` when waiting helps)
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "Conflict",
    "FathomError",
    "IngestError",
    "InvalidQuery",
    "KeyExpired",
    "LimitExceeded",
    "NotFound",
    "PermissionDenied",
    "ProviderError",
    "StorageFull",
    "Unauthorized",
    "UnsupportedFormat",
]


class FathomError(Exception):
    """Base class: every error fathom raises on purpose.

    Attributes:
        code: stable machine-readable identifier, e.g. ``"ingest.encrypted_pdf"``.
        message: one human sentence, safe to show to a user.
    """

    code: str = "fathom.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ConfigError(FathomError):
    code = "config.invalid"


class IngestError(FathomError):
    code = "ingest.failed"


class UnsupportedFormat(IngestError):
    code = "ingest.unsupported_format"


class InvalidQuery(FathomError):
    code = "query.invalid"


class NotFound(FathomError):
    code = "not_found"


class BackendUnavailable(FathomError):
    code = "backend.unavailable"


class StorageFull(FathomError):
    """A write failed because the disk or quota is full; the write left nothing partial."""

    code = "storage.full"


class ProviderError(FathomError):
    code = "provider.failed"


class Unauthorized(FathomError):
    code = "auth.invalid_key"


class KeyExpired(Unauthorized):
    """The API key (or, after a rotation, its previous secret) is past its expiry."""

    code = "auth.key_expired"


class PermissionDenied(FathomError):
    code = "permission.denied"


class Conflict(FathomError):
    code = "conflict"


class LimitExceeded(FathomError):
    """A limit was hit. ``retry_after`` (seconds) is set when waiting makes the request pass."""

    code = "limit.exceeded"

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
