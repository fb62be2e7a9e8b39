"""Slack installations (multi-workspace OAuth, row-level security like every tenant table) and lead search:
a generated tsvector with a GIN index for `/lead find`, and keyset indexes for `/lead list` filters.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('app.current_organization_id', true), '')::integer"


def upgrade() -> None:
    op.create_table(
        "slack_installations",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("team_name", sa.String(length=255), nullable=True),
        sa.Column("enterprise_id", sa.String(length=32), nullable=True),
        sa.Column("app_id", sa.String(length=32), nullable=True),
        sa.Column("bot_id", sa.String(length=32), nullable=True),
        sa.Column("bot_user_id", sa.String(length=32), nullable=True),
        sa.Column("bot_scopes", sa.Text(), nullable=True),
        sa.Column("bot_token_encrypted", sa.Text(), nullable=False),
        sa.Column("installer_user_id", sa.String(length=32), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "installed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_slack_installations_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_slack_installations")),
        sa.UniqueConstraint(
            "organization_id", "team_id", name=op.f("uq_slack_installations_organization_id_team_id")
        ),
    )
    op.create_index("idx_slack_installations_team_id", "slack_installations", ["team_id"], unique=False)
    op.execute("ALTER TABLE slack_installations ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE slack_installations FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY slack_installations_organization_isolation ON slack_installations "
        f"USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
    )
    op.add_column(
        "leads",
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(
                "to_tsvector('simple'::regconfig, coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(company, '') || ' ' || coalesce(email, '') || ' ' || coalesce(regexp_replace(email, '[@._+-]+', ' ', 'g'), ''))",
                persisted=True,
            ),
            nullable=False,
        ),
    )
    op.create_index(
        "idx_leads_org_owner_created",
        "leads",
        [
            "organization_id",
            "assigned_to_id",
            sa.literal_column("created_at DESC"),
            sa.literal_column("id DESC"),
        ],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "idx_leads_org_status_created",
        "leads",
        ["organization_id", "status", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "idx_leads_org_unassigned_created",
        "leads",
        ["organization_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("assigned_to_id IS NULL AND deleted_at IS NULL"),
    )
    op.create_index("idx_leads_search", "leads", ["search_vector"], unique=False, postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("idx_leads_search", table_name="leads", postgresql_using="gin")
    op.drop_index(
        "idx_leads_org_unassigned_created",
        table_name="leads",
        postgresql_where=sa.text("assigned_to_id IS NULL AND deleted_at IS NULL"),
    )
    op.drop_index(
        "idx_leads_org_status_created", table_name="leads", postgresql_where=sa.text("deleted_at IS NULL")
    )
    op.drop_index(
        "idx_leads_org_owner_created", table_name="leads", postgresql_where=sa.text("deleted_at IS NULL")
    )
    op.drop_column("leads", "search_vector")
    op.drop_index("idx_slack_installations_team_id", table_name="slack_installations")
    op.drop_table("slack_installations")
