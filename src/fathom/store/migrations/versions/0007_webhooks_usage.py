"""Webhooks (endpoints and their delivery outbox), usage columns on answers for the usage
rollup, and the upload's trace context on jobs.

Revision ID: 0007_webhooks_usage
Revises: 0006_conversations
Create Date: 2026-12-14
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_webhooks_usage"
down_revision = "0006_conversations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(256), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("retry_at", sa.Float(), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
    )
    op.create_index("ix_webhooks_tenant", "webhooks", ["tenant_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "webhook_id", sa.String(32), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint", "webhook_deliveries", ["webhook_id", "status", "created_at"]
    )
    op.create_index("ix_webhook_deliveries_status", "webhook_deliveries", ["status", "updated_at"])
    op.add_column("answers", sa.Column("model", sa.String(256), nullable=True))
    op.add_column("answers", sa.Column("prompt_tokens", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("answers", sa.Column("completion_tokens", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("answers", sa.Column("cost", sa.Float(), nullable=True))
    op.add_column("answers", sa.Column("cached", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("jobs", sa.Column("trace_parent", sa.String(64), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN, not batch mode: on SQLite a batch rebuilds the table, and dropping the
    # old answers table would cascade to feedback.
    op.drop_column("jobs", "trace_parent")
    for column in ("cached", "cost", "completion_tokens", "prompt_tokens", "model"):
        op.drop_column("answers", column)
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
