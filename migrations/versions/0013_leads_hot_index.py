"""`/lead list hot`: hot leads newest first, index-backed like the other list filters.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "idx_leads_org_temperature_created",
        "leads",
        [
            "organization_id",
            "lead_temperature",
            sa.literal_column("created_at DESC"),
            sa.literal_column("id DESC"),
        ],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("idx_leads_org_temperature_created", table_name="leads")
