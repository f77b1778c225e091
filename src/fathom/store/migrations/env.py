"""Alembic environment: fathom runs migrations programmatically on an open connection."""

from alembic import context

from fathom.store.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("fathom migrations run through fathom.store.Store, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
