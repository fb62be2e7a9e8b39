"""Phase 3a: the seed's composite and partial performance indexes, and GIN indexes on arrays/JSONB.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "idx_leads_assigned_status",
        "leads",
        ["assigned_to_id", "status"],
        unique=False,
        postgresql_where=sa.text("assigned_to_id IS NOT NULL"),
    )
    op.create_index(
        "idx_leads_custom_fields", "leads", ["custom_fields"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        "idx_leads_org_created_at",
        "leads",
        ["organization_id", sa.literal_column("created_at DESC")],
        unique=False,
    )
    op.create_index(
        "idx_leads_org_status_score",
        "leads",
        ["organization_id", "status", sa.literal_column("score DESC")],
        unique=False,
    )
    op.create_index("idx_leads_tags", "leads", ["tags"], unique=False, postgresql_using="gin")
    op.create_index(
        "idx_activity_logs_lead_type_date",
        "activity_logs",
        ["lead_id", "activity_type", sa.literal_column("created_at DESC")],
        unique=False,
    )
    op.create_index(
        "idx_activity_logs_org_created_at",
        "activity_logs",
        ["organization_id", sa.literal_column("created_at DESC")],
        unique=False,
    )
    op.create_index(
        "idx_campaign_leads_campaign_status", "campaign_leads", ["campaign_id", "status"], unique=False
    )
    op.create_index(
        "idx_communications_lead_type_date",
        "communications",
        ["lead_id", "communication_type", sa.literal_column("completed_at DESC")],
        unique=False,
    )
    op.create_index(
        "idx_lead_notes_mentioned_users",
        "lead_notes",
        ["mentioned_users"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "idx_workflow_executions_workflow_status",
        "workflow_executions",
        ["workflow_id", "status", sa.literal_column("started_at DESC")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("idx_workflow_executions_workflow_status", table_name="workflow_executions")
    op.drop_index("idx_lead_notes_mentioned_users", table_name="lead_notes")
    op.drop_index("idx_communications_lead_type_date", table_name="communications")
    op.drop_index("idx_campaign_leads_campaign_status", table_name="campaign_leads")
    op.drop_index("idx_activity_logs_org_created_at", table_name="activity_logs")
    op.drop_index("idx_activity_logs_lead_type_date", table_name="activity_logs")
    op.drop_index("idx_leads_tags", table_name="leads")
    op.drop_index("idx_leads_org_status_score", table_name="leads")
    op.drop_index("idx_leads_org_created_at", table_name="leads")
    op.drop_index("idx_leads_custom_fields", table_name="leads")
    op.drop_index("idx_leads_assigned_status", table_name="leads")
