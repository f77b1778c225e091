"""Bulk writes into PostgreSQL with ``COPY ... FROM STDIN`` on a SQLAlchemy connection's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

__all__ = ["copy_rows"]


def copy_rows(
    connection: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Write ``rows`` (values in ``columns`` order) into ``table`` in ``connection``'s transaction.

    One ``COPY`` in text format through psycopg 3: values are adapted as for a query (lists become
    arrays, bytes ``bytea``; a ``str`` is parsed by the column's type, e.g. a pgvector literal).
    ``table`` and ``columns`` are identifiers from fathom's code, never from input.
    """
    driver = connection.connection.driver_connection
    assert driver is not None
    names = ", ".join(columns)
    with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
