"""Write permission: document owners, and the submitting principal on ingestion jobs.

Existing documents get no owner (NULL): only admins may replace them or change their ACL.
Jobs queued before this migration count as submitted by a non-admin without groups.

Revision ID: 0004_authz
Revises: 0003_chunk_minhash_page
Create Date: 2026-12-01
"""

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


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("owner_admin")
        batch.drop_column("owner_groups")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("owner_user")
