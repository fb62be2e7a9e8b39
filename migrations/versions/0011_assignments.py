"""Assignments: where a reassignment request was posted for a decision, the pending-expiry index, and the
per-organization automatic assignment state (round-robin turn, "nobody eligible" notice).

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('app.current_organization_id', true), '')::integer"


def upgrade() -> None:
    op.add_column(
        "lead_assignments",
        sa.Column(
            "approval_messages",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.create_index(
        "idx_lead_assignments_pending_expiry",
        "lead_assignments",
        ["organization_id", "expires_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "assignment_rotations",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("scope", sa.String(length=50), server_default="leads", nullable=False),
        sa.Column("last_user_id", sa.Integer(), nullable=True),
        sa.Column("assigned_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("nobody_eligible_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("nobody_eligible_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id", "last_user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_assignment_rotations_organization_id_last_user_id"),
            ondelete="SET NULL (last_user_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_assignment_rotations_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_assignment_rotations")),
        sa.UniqueConstraint(
            "organization_id", "scope", name=op.f("uq_assignment_rotations_organization_id_scope")
        ),
    )
    op.create_index(
        "idx_assignment_rotations_last_user_id", "assignment_rotations", ["organization_id", "last_user_id"]
    )
    op.execute("ALTER TABLE assignment_rotations ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE assignment_rotations FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY assignment_rotations_organization_isolation ON assignment_rotations "
        f"USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
    )


def downgrade() -> None:
    op.drop_table("assignment_rotations")
    op.drop_index("idx_lead_assignments_pending_expiry", table_name="lead_assignments")
    op.drop_column("lead_assignments", "approval_messages")
