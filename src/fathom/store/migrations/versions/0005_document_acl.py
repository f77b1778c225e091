"""Document ACL tokens in their own table, so every chunk read for a principal re-checks its
tenant and ACL in SQL, with the same tokens the indexes filter on.

Existing documents get their tokens here from their ACL lists.

Revision ID: 0005_document_acl
Revises: 0004_authz
Create Date: 2026-12-01
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from fathom.index.vocabulary import document_acl_tokens

revision = "0005_document_acl"
down_revision = "0004_authz"
branch_labels = None
depends_on = None


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value)
    return [str(v) for v in value] if isinstance(value, list) else []


def upgrade() -> None:
    op.create_table(
        "document_acl",
        sa.Column("doc_id", sa.String(32), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token", sa.String(512), nullable=False),
        sa.PrimaryKeyConstraint("doc_id", "token"),
    )
    documents = sa.table(
        "documents",
        sa.column("id", sa.String),
        sa.column("acl_users", sa.JSON),
        sa.column("acl_groups", sa.JSON),
    )
    acl = sa.table("document_acl", sa.column("doc_id", sa.String), sa.column("token", sa.String))
    bind = op.get_bind()
    rows = [
        {"doc_id": doc_id, "token": token}
        for doc_id, users, groups in bind.execute(
            sa.select(documents.c.id, documents.c.acl_users, documents.c.acl_groups)
        )
        for token in document_acl_tokens(_names(users), _names(groups))
    ]
    for start in range(0, len(rows), 5000):
        bind.execute(acl.insert(), rows[start : start + 5000])


def downgrade() -> None:
    op.drop_table("document_acl")
