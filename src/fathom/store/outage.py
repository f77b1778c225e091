"""Which store errors mean "the database cannot be reached now" rather than a bug.

The service answers the first kind with 503 ``backend.unavailable`` and ``Retry-After`` (the
request may succeed once the database is back), the second with 500. Deciding it here keeps
one rule for every front (HTTP routes, MCP tools, streamed answers, job workers).
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from fathom.errors import BackendUnavailable

__all__ = ["RETRY_AFTER_SECONDS", "database_unavailable", "is_unavailable"]

# What callers are told to wait while a backend is down: long enough for a restarted database
# or Redis, short enough that clients come back soon after.
RETRY_AFTER_SECONDS = 5


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database could not be reached or dropped the connection.

    Connection refused, a server that went away mid-query, a network timeout (all
    ``OperationalError`` or ``InterfaceError`` from the driver, or a connection the pool
    invalidated) and a pool with no connection to give count; constraint violations, SQL errors
    and programming errors do not.
    """
    if isinstance(error, sa_exc.TimeoutError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        return bool(error.connection_invalidated) or isinstance(
            error, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return False


def database_unavailable() -> BackendUnavailable:
    """The error a caller sees while the database does not answer (no driver details)."""
    return BackendUnavailable("the database does not answer; retry shortly", code="backend.unavailable")
