"""Phase 1 (cont.), scoring and communications: lead_scoring_rules, lead_score_history, communications.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_scoring_rules",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("rule_type", sa.String(length=50), nullable=False),
        sa.Column("criteria", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("score_points", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "rule_type IN ('demographic', 'behavioral', 'engagement', 'firmographic')",
            name=op.f("ck_lead_scoring_rules_rule_type"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "created_by"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_lead_scoring_rules_organization_id_created_by"),
            ondelete="SET NULL (created_by)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_lead_scoring_rules_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_lead_scoring_rules")),
    )
    op.create_index("idx_scoring_rules_created_by", "lead_scoring_rules", ["created_by"], unique=False)
    op.create_index("idx_scoring_rules_org_id", "lead_scoring_rules", ["organization_id"], unique=False)
    op.create_index("idx_scoring_rules_type", "lead_scoring_rules", ["rule_type"], unique=False)
    op.create_table(
        "lead_score_history",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("previous_score", sa.Integer(), nullable=False),
        sa.Column("new_score", sa.Integer(), nullable=False),
        sa.Column("score_change", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "score_change = new_score - previous_score", name=op.f("ck_lead_score_history_change_adds_up")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_lead_score_history_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "rule_id"],
            ["lead_scoring_rules.organization_id", "lead_scoring_rules.id"],
            name=op.f("fk_lead_score_history_organization_id_rule_id"),
            ondelete="SET NULL (rule_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_lead_score_history_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_lead_score_history")),
    )
    op.create_index("idx_score_history_created_at", "lead_score_history", ["created_at"], unique=False)
    op.create_index("idx_score_history_lead_id", "lead_score_history", ["lead_id"], unique=False)
    op.create_index("idx_score_history_rule_id", "lead_score_history", ["rule_id"], unique=False)
    op.create_table(
        "communications",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("communication_type", sa.String(length=50), nullable=False),
        sa.Column("direction", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=50), server_default="completed", nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "communication_type IN ('email', 'call', 'meeting', 'linkedin', 'sms')",
            name=op.f("ck_communications_communication_type"),
        ),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name=op.f("ck_communications_direction")),
        sa.CheckConstraint(
            "status IN ('scheduled', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_communications_status"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_communications_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_communications_organization_id_user_id"),
            ondelete="SET NULL (user_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_communications_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_communications")),
    )
    op.create_index("idx_communications_lead_id", "communications", ["lead_id"], unique=False)
    op.create_index("idx_communications_scheduled_at", "communications", ["scheduled_at"], unique=False)
    op.create_index("idx_communications_type", "communications", ["communication_type"], unique=False)
    op.create_index("idx_communications_user_id", "communications", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("communications")
    op.drop_table("lead_score_history")
    op.drop_table("lead_scoring_rules")
