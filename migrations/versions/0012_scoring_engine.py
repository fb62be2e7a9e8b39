"""Scoring engine: rule repeat policies, history kinds (rule/manual/decay) with the triggering event and the
manager who changed it, the score lock and decay clock on leads, scored events (deduplicated per
organization) and each rule's current contribution per lead.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('app.current_organization_id', true), '')::integer"


def _rls(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {table}_organization_isolation ON {table} "
        f"USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
    )


def upgrade() -> None:
    op.add_column(
        "lead_scoring_rules",
        sa.Column("repeat_policy", sa.String(length=20), server_default="once_per_lead", nullable=False),
    )
    op.add_column("lead_scoring_rules", sa.Column("repeat_limit", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_lead_scoring_rules_repeat_policy"),
        "lead_scoring_rules",
        "repeat_policy IN ('once_per_lead', 'once_per_event', 'at_most')",
    )
    op.create_check_constraint(
        op.f("ck_lead_scoring_rules_repeat_limit"),
        "lead_scoring_rules",
        "(repeat_policy = 'at_most') = (repeat_limit IS NOT NULL)",
    )
    op.create_check_constraint(
        op.f("ck_lead_scoring_rules_repeat_limit_positive"),
        "lead_scoring_rules",
        "repeat_limit IS NULL OR repeat_limit >= 1",
    )

    op.add_column(
        "lead_score_history", sa.Column("kind", sa.String(length=20), server_default="rule", nullable=False)
    )
    op.add_column("lead_score_history", sa.Column("event_id", sa.BigInteger(), nullable=True))
    op.add_column("lead_score_history", sa.Column("changed_by", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_lead_score_history_kind"), "lead_score_history", "kind IN ('rule', 'manual', 'decay')"
    )
    op.create_foreign_key(
        op.f("fk_lead_score_history_organization_id_changed_by"),
        "lead_score_history",
        "users",
        ["organization_id", "changed_by"],
        ["organization_id", "id"],
        ondelete="SET NULL (changed_by)",
    )
    op.create_index(
        "idx_score_history_org_lead_id", "lead_score_history", ["organization_id", "lead_id", "id"]
    )
    op.create_index(
        "idx_score_history_org_changed_by",
        "lead_score_history",
        ["organization_id", "changed_by"],
        postgresql_where=sa.text("changed_by IS NOT NULL"),
    )

    op.add_column("leads", sa.Column("score_locked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("leads", sa.Column("score_decayed_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "lead_events",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column(
            "properties",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_lead_events_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_lead_events_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_lead_events")),
    )
    op.create_index(
        "uq_lead_events_org_dedupe_key", "lead_events", ["organization_id", "dedupe_key"], unique=True
    )
    op.create_index(
        "idx_lead_events_org_lead_occurred", "lead_events", ["organization_id", "lead_id", "occurred_at"]
    )
    _rls("lead_events")

    op.create_table(
        "lead_rule_scores",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("firings", sa.Integer(), nullable=False),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id", "lead_id"],
            ["leads.organization_id", "leads.id"],
            name=op.f("fk_lead_rule_scores_organization_id_lead_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "rule_id"],
            ["lead_scoring_rules.organization_id", "lead_scoring_rules.id"],
            name=op.f("fk_lead_rule_scores_organization_id_rule_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_lead_rule_scores_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_lead_rule_scores")),
    )
    op.create_index(
        "uq_lead_rule_scores_org_lead_rule",
        "lead_rule_scores",
        ["organization_id", "lead_id", "rule_id"],
        unique=True,
    )
    op.create_index("idx_lead_rule_scores_org_rule", "lead_rule_scores", ["organization_id", "rule_id"])
    _rls("lead_rule_scores")


def downgrade() -> None:
    op.drop_table("lead_rule_scores")
    op.drop_table("lead_events")
    op.drop_column("leads", "score_decayed_at")
    op.drop_column("leads", "score_locked_at")
    op.drop_index(
        "idx_score_history_org_changed_by",
        table_name="lead_score_history",
        postgresql_where=sa.text("changed_by IS NOT NULL"),
    )
    op.drop_index("idx_score_history_org_lead_id", table_name="lead_score_history")
    op.drop_constraint(
        op.f("fk_lead_score_history_organization_id_changed_by"), "lead_score_history", type_="foreignkey"
    )
    op.drop_constraint(op.f("ck_lead_score_history_kind"), "lead_score_history", type_="check")
    op.drop_column("lead_score_history", "changed_by")
    op.drop_column("lead_score_history", "event_id")
    op.drop_column("lead_score_history", "kind")
    op.drop_constraint(
        op.f("ck_lead_scoring_rules_repeat_limit_positive"), "lead_scoring_rules", type_="check"
    )
    op.drop_constraint(op.f("ck_lead_scoring_rules_repeat_limit"), "lead_scoring_rules", type_="check")
    op.drop_constraint(op.f("ck_lead_scoring_rules_repeat_policy"), "lead_scoring_rules", type_="check")
    op.drop_column("lead_scoring_rules", "repeat_limit")
    op.drop_column("lead_scoring_rules", "repeat_policy")
