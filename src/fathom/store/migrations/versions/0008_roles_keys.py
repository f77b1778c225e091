"""Roles, document write ACLs, and API keys that expire, rotate and carry scopes.

- API keys get a role (``reader``, ``editor``, ``admin``): admin keys become ``admin``, every
  other key ``editor`` (what a non-admin key could do before roles: search, ask, upload and
  replace its own documents). ``admin`` stays, kept equal to ``role = 'admin'``.
- API keys get scopes (NULL: every scope, as before), an expiry (NULL: never), and the columns
  of a rotation's grace period (the previous secret's prefix and hash and until when it works).
- Documents get ``owner_key`` (the key id owning a document created by a key without a user)
  and a write ACL (``write_users``, ``write_groups``; NULL: owner and admins only).
- Jobs record the submitter's role and key and the write ACL the upload asks for; jobs queued
  before this migration count as submitted by an editor (or an admin, by ``owner_admin``).

Revision ID: 0008_roles_keys
Revises: 0007_webhooks_usage
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_roles_keys"
down_revision = "0007_webhooks_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("role", sa.String(16), nullable=False, server_default="editor"))
    keys = sa.table("api_keys", sa.column("admin", sa.Boolean), sa.column("role", sa.String))
    op.get_bind().execute(keys.update().where(keys.c.admin == sa.true()).values(role="admin"))
    op.add_column("api_keys", sa.Column("scopes", sa.JSON(), nullable=True))
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("previous_prefix", sa.String(32), nullable=True))
    op.add_column("api_keys", sa.Column("previous_hash", sa.String(64), nullable=True))
    op.add_column("api_keys", sa.Column("previous_valid_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("uq_api_keys_previous_prefix", "api_keys", ["previous_prefix"], unique=True)
    op.add_column("documents", sa.Column("owner_key", sa.String(32), nullable=True))
    op.add_column("documents", sa.Column("write_users", sa.JSON(), nullable=True))
    op.add_column("documents", sa.Column("write_groups", sa.JSON(), nullable=True))
    op.add_column("jobs", sa.Column("owner_role", sa.String(16), nullable=True))
    op.add_column("jobs", sa.Column("owner_key", sa.String(32), nullable=True))
    op.add_column("jobs", sa.Column("write_users", sa.JSON(), nullable=True))
    op.add_column("jobs", sa.Column("write_groups", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN, not batch mode: on SQLite a batch rebuilds the table, and dropping the
    # old documents table would cascade to chunks. Keys keep ``admin``, so an older version
    # reads reader keys as non-admin keys (which may upload): downgrading widens readers.
    for column in ("write_groups", "write_users", "owner_key", "owner_role"):
        op.drop_column("jobs", column)
    for column in ("write_groups", "write_users", "owner_key"):
        op.drop_column("documents", column)
    op.drop_index("uq_api_keys_previous_prefix", table_name="api_keys")
    for column in (
        "rotated_at",
        "previous_valid_until",
        "previous_hash",
        "previous_prefix",
        "expires_at",
        "scopes",
        "role",
    ):
        op.drop_column("api_keys", column)
