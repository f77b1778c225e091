"""Write permission and feedback identity.

- Documents get an owner. Existing documents get none (NULL): only admins may replace them or
  change their ACL.
- Jobs record the submitting principal's groups and admin flag, so the worker can check its
  permission again when it commits. Jobs queued before this migration count as submitted by a
  non-admin without groups.
- Answers record the API key that received them (a key without a user rates only its own).
- Feedback gets a random public id; the integer id, a counter across tenants, stays internal.
  Existing rows get one here.

Revision ID: 0004_authz
Revises: 0003_chunk_minhash_page
Create Date: 2026-12-01
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0004_authz"
down_revision = "0003_chunk_minhash_page"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("owner_user", sa.String(256), nullable=True))
    op.add_column("jobs", sa.Column("owner_groups", sa.JSON(), nullable=True))
    op.add_column("jobs", sa.Column("owner_admin", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("answers", sa.Column("key_id", sa.String(32), nullable=True))
    op.add_column("feedback", sa.Column("public_id", sa.String(32), nullable=True))
    op.create_index("uq_feedback_public_id", "feedback", ["public_id"], unique=True)
    feedback = sa.table("feedback", sa.column("id", sa.Integer), sa.column("public_id", sa.String))
    bind = op.get_bind()
    ids = bind.execute(sa.select(feedback.c.id).where(feedback.c.public_id.is_(None))).scalars().all()
    if ids:
        bind.execute(
            feedback.update().where(feedback.c.id == sa.bindparam("row_id")),
            [{"row_id": row_id, "public_id": uuid.uuid4().hex} for row_id in ids],
        )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL), not batch mode: on SQLite a batch rebuilds
    # the table, and dropping the old documents or answers table would cascade to chunks or
    # feedback.
    op.drop_index("uq_feedback_public_id", table_name="feedback")
    op.drop_column("feedback", "public_id")
    op.drop_column("answers", "key_id")
    op.drop_column("jobs", "owner_admin")
    op.drop_column("jobs", "owner_groups")
    op.drop_column("documents", "owner_user")
