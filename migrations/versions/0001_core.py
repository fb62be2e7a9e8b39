"""Phase 1, core: organizations, users, leads, workflows, workflow executions, activity logs.

Tenant tables carry ``organization_id`` in their primary key and in every foreign key to another tenant
table; user references are ``ON DELETE SET NULL (<column>)`` so history survives a user's deletion.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("slack_team_id", sa.String(length=32), nullable=True),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("subscription_tier", sa.String(length=50), server_default="free", nullable=False),
        sa.Column("billing_email", sa.String(length=255), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "subscription_tier IN ('free', 'starter', 'professional', 'enterprise')",
            name=op.f("ck_organizations_subscription_tier"),
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_organizations_name_not_blank")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slack_team_id", name=op.f("uq_organizations_slack_team_id")),
    )
    op.create_table(
        "users",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column(
            "email_normalized",
            sa.String(length=320),
            sa.Computed("lower(email)", persisted=True),
            nullable=True,
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=20), server_default="rep", nullable=False),
        sa.Column("slack_user_id", sa.String(length=32), nullable=True),
        sa.Column("timezone", sa.String(length=50), server_default="UTC", nullable=False),
        sa.Column(
            "preferences",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("avatar_url", sa.String(length=500), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("position('@' in email) > 1", name=op.f("ck_users_email_shape")),
        sa.CheckConstraint("role IN ('admin', 'manager', 'rep')", name=op.f("ck_users_role")),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_users_name_not_blank")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_users_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_users")),
        sa.UniqueConstraint(
            "organization_id", "slack_user_id", name=op.f("uq_users_organization_id_slack_user_id")
        ),
    )
    op.create_index("uq_users_org_email", "users", ["organization_id", "email_normalized"], unique=True)
    op.create_table(
        "leads",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column(
            "email_normalized",
            sa.String(length=320),
            sa.Computed("lower(email)", persisted=True),
            nullable=True,
        ),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=50), nullable=True),
        sa.Column("company", sa.String(length=255), nullable=True),
        sa.Column("job_title", sa.String(length=255), nullable=True),
        sa.Column("website", sa.String(length=500), nullable=True),
        sa.Column("linkedin_url", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=30), server_default="new", nullable=False),
        sa.Column("score", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lead_temperature", sa.String(length=20), server_default="cold", nullable=False),
        sa.Column("assigned_to_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column(
            "tags",
            postgresql.ARRAY(sa.String(length=64)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column(
            "custom_fields",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("expected_close_date", sa.Date(), nullable=True),
        sa.Column("last_engagement_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_contacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_status", sa.String(length=20), server_default="unknown", nullable=False),
        sa.Column("do_not_contact", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("email IS NULL OR position('@' in email) > 1", name=op.f("ck_leads_email_shape")),
        sa.CheckConstraint(
            "email_status IN ('unknown', 'valid', 'invalid')", name=op.f("ck_leads_email_status")
        ),
        sa.CheckConstraint(
            "lead_temperature IN ('cold', 'warm', 'hot')", name=op.f("ck_leads_lead_temperature")
        ),
        sa.CheckConstraint(
            "status IN ('new', 'contacted', 'qualified', 'unqualified', 'proposal', 'negotiation', 'won', 'lost')",
            name=op.f("ck_leads_status"),
        ),
        sa.CheckConstraint(
            "email IS NOT NULL OR first_name IS NOT NULL OR last_name IS NOT NULL OR company IS NOT NULL",
            name=op.f("ck_leads_identifiable"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "assigned_to_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_leads_organization_id_assigned_to_id"),
            ondelete="SET NULL (assigned_to_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "created_by"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_leads_organization_id_created_by"),
            ondelete="SET NULL (created_by)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_leads_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_leads")),
    )
    op.create_index("idx_leads_created_by", "leads", ["created_by"], unique=False)
    op.create_index(
        "uq_leads_org_email",
        "leads",
        ["organization_id", "email_normalized"],
        unique=True,
        postgresql_where=sa.text("email_normalized IS NOT NULL AND deleted_at IS NULL"),
    )
    op.create_table(
        "workflows",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("n8n_workflow_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("trigger_type", sa.String(length=100), nullable=True),
        sa.Column(
            "trigger_conditions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "configuration",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("webhook_url", sa.String(length=2000), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "category IN ('lead_nurturing', 'follow_up', 'qualification', 'onboarding', 're_engagement', 'notification', 'other')",
            name=op.f("ck_workflows_category"),
        ),
        sa.CheckConstraint(
            "trigger_type IN ('manual', 'scheduled', 'event_based', 'lead_status_change', 'lead_created', 'lead_assigned', 'score_threshold', 'note_added')",
            name=op.f("ck_workflows_trigger_type"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "created_by"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_workflows_organization_id_created_by"),
            ondelete="SET NULL (created_by)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_workflows_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_workflows")),
        sa.UniqueConstraint(
            "organization_id", "n8n_workflow_id", name=op.f("uq_workflows_organization_id_n8n_workflow_id")
        ),
    )
    op.create_index("idx_workflows_category", "workflows", ["category"], unique=False)
    op.create_index("idx_workflows_created_by", "workflows", ["created_by"], unique=False)
    op.create_index("idx_workflows_n8n_id", "workflows", ["n8n_workflow_id"], unique=False)
    op.create_index("idx_workflows_organization_id", "workflows", ["organization_id"], unique=False)
    op.create_index("idx_workflows_trigger_type", "workflows", ["trigger_type"], unique=False)
    op.create_table(
        "workflow_executions",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("n8n_execution_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("trigger_event", sa.String(length=100), nullable=True),
        sa.Column(
            "input_data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "output_data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("retry_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("triggered_by", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'waiting', 'success', 'error', 'cancelled')",
            name=op.f("ck_workflow_executions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_workflow_executions_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "triggered_by"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_workflow_executions_organization_id_triggered_by"),
            ondelete="SET NULL (triggered_by)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "workflow_id"],
            ["workflows.organization_id", "workflows.id"],
            name=op.f("fk_workflow_executions_organization_id_workflow_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_workflow_executions_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_workflow_executions")),
    )
    op.create_index("idx_workflow_executions_lead_id", "workflow_executions", ["lead_id"], unique=False)
    op.create_index(
        "idx_workflow_executions_n8n_execution_id",
        "workflow_executions",
        ["organization_id", "n8n_execution_id"],
        unique=False,
    )
    op.create_index(
        "idx_workflow_executions_triggered_by", "workflow_executions", ["triggered_by"], unique=False
    )
    op.create_table(
        "activity_logs",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("activity_type", sa.String(length=100), nullable=False),
        sa.Column("entity_type", sa.String(length=50), nullable=True),
        sa.Column("entity_id", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "entity_type IN ('organization', 'user', 'lead', 'note', 'assignment', 'scoring_rule', 'communication', 'workflow', 'workflow_execution', 'campaign', 'integration')",
            name=op.f("ck_activity_logs_entity_type"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_activity_logs_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_activity_logs_organization_id_user_id"),
            ondelete="SET NULL (user_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_activity_logs_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_activity_logs")),
    )
    op.create_index("idx_activity_logs_user_id", "activity_logs", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("activity_logs")
    op.drop_table("workflow_executions")
    op.drop_table("workflows")
    op.drop_table("leads")
    op.drop_table("users")
    op.drop_table("organizations")
