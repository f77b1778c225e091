"""Conversations and their turns (question, standalone question, answer, citations), and the
documents each turn cites, so deleting a document erases the answers that quote it.

Revision ID: 0006_conversations
Revises: 0005_document_acl
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_conversations"
down_revision = "0005_document_acl"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("owner_user", sa.String(256), nullable=True),
        sa.Column("owner_key", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_conversations_tenant_updated", "conversations", ["tenant_id", "updated_at"])
    op.create_table(
        "conversation_turns",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("standalone_question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("abstained", sa.Boolean(), nullable=False),
        sa.Column("citations", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("redacted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("conversation_id", "ordinal", name="uq_conversation_turns_ordinal"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "conversation_turn_documents",
        sa.Column(
            "turn_id",
            sa.Integer(),
            sa.ForeignKey("conversation_turns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("doc_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("turn_id", "doc_id"),
    )
    op.create_index("ix_conversation_turn_documents_doc", "conversation_turn_documents", ["doc_id"])


def downgrade() -> None:
    op.drop_table("conversation_turn_documents")
    op.drop_table("conversation_turns")
    op.drop_table("conversations")
