"""Scoring, cheap to rewrite in bulk: what each rule gives a lead moves from ``lead_rule_scores`` (one row
per lead and rule, three foreign-key checks each) to ``leads.rule_points`` (one jsonb per lead, on the row
the score lives on: same tenant key, same row-level security, nothing to check); a rule change's history row
carries ``rule_deltas`` (each moved rule's delta), so a rescore writes one history row per changed lead.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('app.current_organization_id', true), '')::integer"


def upgrade() -> None:
    op.add_column(
        "leads",
        sa.Column(
            "rule_points",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "lead_score_history",
        sa.Column("rule_deltas", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.execute(
        "UPDATE lead_score_history SET rule_deltas = jsonb_build_object(rule_id::text, score_change) "
        "WHERE kind = 'rule' AND rule_id IS NOT NULL"
    )
    op.execute(
        """
UPDATE leads l SET rule_points = s.points
FROM (
  SELECT organization_id, lead_id,
         jsonb_object_agg(rule_id::text, jsonb_build_array(points, firings,
                          to_jsonb(extract(epoch FROM coalesce(last_fired_at, updated_at))))) AS points
  FROM lead_rule_scores GROUP BY organization_id, lead_id
) s
WHERE l.organization_id = s.organization_id AND l.id = s.lead_id
"""
    )
    op.drop_table("lead_rule_scores")


def downgrade() -> None:
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
    op.execute("ALTER TABLE lead_rule_scores ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE lead_rule_scores FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY lead_rule_scores_organization_isolation ON lead_rule_scores "
        f"USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
    )
    op.execute(
        """
INSERT INTO lead_rule_scores (organization_id, lead_id, rule_id, points, firings, last_fired_at)
SELECT l.organization_id, l.id, e.key::int, (e.value ->> 0)::int, (e.value ->> 1)::int,
       to_timestamp(CAST(nullif(e.value -> 2, 'null') AS numeric))
FROM leads l CROSS JOIN LATERAL jsonb_each(l.rule_points) e
JOIN lead_scoring_rules r ON r.organization_id = l.organization_id AND r.id = e.key::int
"""
    )
    op.drop_column("lead_score_history", "rule_deltas")
    op.drop_column("leads", "rule_points")
