"""The webhook sweeper finds events still ``received`` (answered, not yet processed) by index, oldest first,
instead of reading every event of the organization.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "idx_webhook_events_received",
        "webhook_events",
        ["organization_id", "id"],
        postgresql_where=sa.text("status = 'received'"),
    )


def downgrade() -> None:
    op.drop_index("idx_webhook_events_received", table_name="webhook_events")
