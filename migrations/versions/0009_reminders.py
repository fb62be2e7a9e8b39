"""Reminders: follow-ups delivered as Slack DMs by the scheduler, with a recorded send intent.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ENTITY_TYPES = (
    "'organization', 'user', 'lead', 'note', 'assignment', 'scoring_rule', 'communication', 'workflow', "
    "'workflow_execution', 'campaign', 'integration'"
)
CURRENT_ORG = "NULLIF(current_setting('app.current_organization_id', true), '')::integer"


def _entity_types(listed: str) -> None:
    op.drop_constraint(op.f("ck_activity_logs_entity_type"), "activity_logs", type_="check")
    op.create_check_constraint(
        op.f("ck_activity_logs_entity_type"), "activity_logs", f"entity_type IN ({listed})"
    )


def upgrade() -> None:
    _entity_types(OLD_ENTITY_TYPES + ", 'reminder'")
    op.create_table(
        "reminders",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("explicit_time", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="scheduled", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("send_key", sa.Uuid(), nullable=True),
        sa.Column("sending_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("slack_channel", sa.String(length=50), nullable=True),
        sa.Column("slack_ts", sa.String(length=50), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('scheduled', 'sending', 'sent', 'failed', 'cancelled')",
            name=op.f("ck_reminders_status"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "created_by"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_reminders_organization_id_created_by"),
            ondelete="SET NULL (created_by)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_reminders_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_reminders_organization_id_user_id"),
            ondelete="SET NULL (user_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_reminders_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_reminders")),
    )
    op.create_index("idx_reminders_org_status_due", "reminders", ["organization_id", "status", "due_at"])
    op.create_index(
        "idx_reminders_org_user_due",
        "reminders",
        ["organization_id", "user_id", "due_at"],
        postgresql_where=sa.text("status IN ('scheduled', 'sending')"),
    )
    op.create_index("idx_reminders_org_lead", "reminders", ["organization_id", "lead_id", "due_at"])
    op.create_index("idx_reminders_org_created_by", "reminders", ["organization_id", "created_by"])
    op.execute("ALTER TABLE reminders ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE reminders FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY reminders_organization_isolation ON reminders "
        f"USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
    )


def downgrade() -> None:
    op.drop_table("reminders")
    op.execute("DELETE FROM activity_logs WHERE entity_type = 'reminder'")
    _entity_types(OLD_ENTITY_TYPES)
