"""Workflow dispatch: outbound POST outcomes and the claim (lease) that makes the outbox safe with several
processes sending and sweeping.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "workflow_executions",
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
    )
    op.add_column(
        "workflow_executions", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("workflow_executions", sa.Column("response_status", sa.Integer(), nullable=True))
    op.add_column("workflow_executions", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "idx_workflow_executions_due",
        "workflow_executions",
        ["organization_id", "next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index(
        "idx_workflow_executions_due",
        table_name="workflow_executions",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_column("workflow_executions", "delivered_at")
    op.drop_column("workflow_executions", "response_status")
    op.drop_column("workflow_executions", "lease_expires_at")
    op.drop_column("workflow_executions", "next_attempt_at")
