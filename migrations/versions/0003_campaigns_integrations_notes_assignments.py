"""Phase 2: campaigns, campaign_leads, integrations, lead_notes and lead_assignments.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("campaign_type", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=50), server_default="draft", nullable=False),
        sa.Column(
            "target_criteria",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("budget_allocated", sa.Integer(), nullable=True),
        sa.Column("budget_spent", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "goals",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "campaign_type IN ('email', 'cold_outreach', 'content', 'social', 'event')",
            name=op.f("ck_campaigns_campaign_type"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'paused', 'completed', 'cancelled')",
            name=op.f("ck_campaigns_status"),
        ),
        sa.CheckConstraint(
            "budget_allocated IS NULL OR budget_allocated >= 0",
            name=op.f("ck_campaigns_budget_allocated_positive"),
        ),
        sa.CheckConstraint("budget_spent >= 0", name=op.f("ck_campaigns_budget_spent_positive")),
        sa.CheckConstraint(
            "end_date IS NULL OR start_date IS NULL OR end_date >= start_date",
            name=op.f("ck_campaigns_dates_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "created_by"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_campaigns_organization_id_created_by"),
            ondelete="SET NULL (created_by)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_campaigns_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_campaigns")),
    )
    op.create_index("idx_campaigns_created_by", "campaigns", ["created_by"], unique=False)
    op.create_index("idx_campaigns_organization_id", "campaigns", ["organization_id"], unique=False)
    op.create_index("idx_campaigns_status", "campaigns", ["status"], unique=False)
    op.create_index("idx_campaigns_type", "campaigns", ["campaign_type"], unique=False)
    op.create_table(
        "campaign_leads",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=50), server_default="pending", nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("conversion_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'contacted', 'responded', 'converted', 'excluded')",
            name=op.f("ck_campaign_leads_status"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "campaign_id"],
            ["campaigns.organization_id", "campaigns.id"],
            name=op.f("fk_campaign_leads_organization_id_campaign_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_campaign_leads_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_campaign_leads_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_campaign_leads")),
        sa.UniqueConstraint(
            "organization_id",
            "campaign_id",
            "lead_id",
            name=op.f("uq_campaign_leads_organization_id_campaign_id_lead_id"),
        ),
    )
    op.create_index("idx_campaign_leads_campaign_id", "campaign_leads", ["campaign_id"], unique=False)
    op.create_index("idx_campaign_leads_lead_id", "campaign_leads", ["lead_id"], unique=False)
    op.create_index("idx_campaign_leads_status", "campaign_leads", ["status"], unique=False)
    op.create_table(
        "integrations",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("integration_type", sa.String(length=100), nullable=False),
        sa.Column("provider_name", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column(
            "configuration",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("encrypted_secrets", sa.Text(), nullable=True),
        sa.Column("webhook_key_hash", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=50), server_default="active", nullable=False),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sync_frequency_minutes", sa.Integer(), server_default="60", nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "integration_type IN ('crm', 'email_provider', 'automation', 'social', 'calendar', 'messaging')",
            name=op.f("ck_integrations_integration_type"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'inactive', 'error', 'expired')", name=op.f("ck_integrations_status")
        ),
        sa.CheckConstraint(
            "sync_frequency_minutes > 0", name=op.f("ck_integrations_sync_frequency_positive")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "created_by"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_integrations_organization_id_created_by"),
            ondelete="SET NULL (created_by)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_integrations_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_integrations")),
        sa.UniqueConstraint(
            "organization_id",
            "webhook_key_hash",
            name=op.f("uq_integrations_organization_id_webhook_key_hash"),
        ),
    )
    op.create_index("idx_integrations_created_by", "integrations", ["created_by"], unique=False)
    op.create_index("idx_integrations_organization_id", "integrations", ["organization_id"], unique=False)
    op.create_index("idx_integrations_status", "integrations", ["status"], unique=False)
    op.create_index("idx_integrations_type", "integrations", ["integration_type"], unique=False)
    op.create_index("idx_integrations_webhook_key_hash", "integrations", ["webhook_key_hash"], unique=False)
    op.create_table(
        "lead_notes",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("note_type", sa.String(length=50), server_default="general", nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("is_private", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "mentioned_users",
            postgresql.ARRAY(sa.Integer()),
            server_default=sa.text("'{}'::integer[]"),
            nullable=False,
        ),
        sa.Column(
            "attachments",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "note_type IN ('general', 'meeting', 'call', 'research', 'reminder')",
            name=op.f("ck_lead_notes_note_type"),
        ),
        sa.CheckConstraint("length(btrim(content)) > 0", name=op.f("ck_lead_notes_content_not_blank")),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_lead_notes_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_lead_notes_organization_id_user_id"),
            ondelete="SET NULL (user_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_lead_notes_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_lead_notes")),
    )
    op.create_index("idx_lead_notes_created_at", "lead_notes", ["created_at"], unique=False)
    op.create_index("idx_lead_notes_lead_id", "lead_notes", ["lead_id"], unique=False)
    op.create_index("idx_lead_notes_type", "lead_notes", ["note_type"], unique=False)
    op.create_index("idx_lead_notes_user_id", "lead_notes", ["user_id"], unique=False)
    op.create_table(
        "lead_assignments",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("assigned_from", sa.Integer(), nullable=True),
        sa.Column("assigned_to", sa.Integer(), nullable=True),
        sa.Column("assigned_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="completed", nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled', 'completed')",
            name=op.f("ck_lead_assignments_status"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "assigned_by"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_lead_assignments_organization_id_assigned_by"),
            ondelete="SET NULL (assigned_by)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "assigned_from"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_lead_assignments_organization_id_assigned_from"),
            ondelete="SET NULL (assigned_from)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "assigned_to"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_lead_assignments_organization_id_assigned_to"),
            ondelete="SET NULL (assigned_to)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "decided_by"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_lead_assignments_organization_id_decided_by"),
            ondelete="SET NULL (decided_by)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_lead_assignments_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "requested_by"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_lead_assignments_organization_id_requested_by"),
            ondelete="SET NULL (requested_by)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_lead_assignments_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_lead_assignments")),
    )
    op.create_index("idx_lead_assignments_assigned_at", "lead_assignments", ["assigned_at"], unique=False)
    op.create_index("idx_lead_assignments_assigned_by", "lead_assignments", ["assigned_by"], unique=False)
    op.create_index("idx_lead_assignments_assigned_from", "lead_assignments", ["assigned_from"], unique=False)
    op.create_index("idx_lead_assignments_assigned_to", "lead_assignments", ["assigned_to"], unique=False)
    op.create_index("idx_lead_assignments_decided_by", "lead_assignments", ["decided_by"], unique=False)
    op.create_index("idx_lead_assignments_lead_id", "lead_assignments", ["lead_id"], unique=False)
    op.create_index("idx_lead_assignments_requested_by", "lead_assignments", ["requested_by"], unique=False)
    op.create_index(
        "uq_lead_assignments_one_pending",
        "lead_assignments",
        ["organization_id", "lead_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("lead_assignments")
    op.drop_table("lead_notes")
    op.drop_table("integrations")
    op.drop_table("campaign_leads")
    op.drop_table("campaigns")
