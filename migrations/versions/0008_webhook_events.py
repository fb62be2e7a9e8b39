"""Webhook gateway: every delivery stored once per provider event id (and Mailgun nonce), and email delivery
state on communications, found by the Message-ID we set when sending.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('app.current_organization_id', true), '')::integer"

EVENT_ORG_FUNCTION = """
CREATE FUNCTION lma_org_for_webhook_event(event_id bigint) RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT e.organization_id FROM public.webhook_events e WHERE e.id = event_id
$$
"""

ALL_ORGS_FUNCTION = """
CREATE FUNCTION lma_all_organization_ids() RETURNS SETOF integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT o.id FROM public.organizations o ORDER BY o.id
$$
"""


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("provider_event_id", sa.String(length=255), nullable=False),
        sa.Column("nonce", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="received", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "provider IN ('n8n', 'sendgrid', 'mailgun', 'postmark')", name=op.f("ck_webhook_events_provider")
        ),
        sa.CheckConstraint(
            "status IN ('received', 'processed', 'ignored', 'failed')", name=op.f("ck_webhook_events_status")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "integration_id"],
            ["integrations.organization_id", "integrations.id"],
            name=op.f("fk_webhook_events_organization_id_integration_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_events_organization_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint(
            "organization_id",
            "integration_id",
            "provider_event_id",
            name=op.f("uq_webhook_events_organization_id_integration_id_provider_event_id"),
        ),
    )
    op.create_index(
        "uq_webhook_events_nonce",
        "webhook_events",
        ["organization_id", "integration_id", "nonce"],
        unique=True,
        postgresql_where=sa.text("nonce IS NOT NULL"),
    )
    op.create_index(
        "idx_webhook_events_integration_received",
        "webhook_events",
        ["organization_id", "integration_id", sa.literal_column("received_at DESC")],
    )
    op.create_index(
        "idx_webhook_events_failed",
        "webhook_events",
        ["organization_id", sa.literal_column("received_at DESC")],
        postgresql_where=sa.text("status = 'failed'"),
    )
    op.execute("ALTER TABLE webhook_events ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE webhook_events FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY webhook_events_organization_isolation ON webhook_events "
        f"USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
    )
    # `lma-bot webhooks replay ID` finds an event's organization through this narrow, ids-only function.
    op.execute(
        "CREATE POLICY webhook_events_definer_read ON webhook_events FOR SELECT TO CURRENT_USER USING (true)"
    )
    op.execute(EVENT_ORG_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION lma_org_for_webhook_event(bigint) FROM PUBLIC")
    # `lma-bot keys rotate` must reach deactivated organizations too, or dropping an old key would strand them.
    op.execute(ALL_ORGS_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION lma_all_organization_ids() FROM PUBLIC")
    op.add_column("communications", sa.Column("message_id", sa.String(length=255), nullable=True))
    op.add_column("communications", sa.Column("delivery_status", sa.String(length=20), nullable=True))
    op.create_check_constraint(
        op.f("ck_communications_delivery_status"),
        "communications",
        "delivery_status IN ('queued', 'sent', 'delivered', 'opened', 'clicked', 'replied', 'bounced', "
        "'complained', 'failed')",
    )
    op.create_index(
        "uq_communications_org_message_id",
        "communications",
        ["organization_id", "message_id"],
        unique=True,
        postgresql_where=sa.text("message_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_communications_org_message_id", table_name="communications")
    op.drop_constraint(op.f("ck_communications_delivery_status"), "communications", type_="check")
    op.drop_column("communications", "delivery_status")
    op.drop_column("communications", "message_id")
    op.execute("DROP FUNCTION lma_all_organization_ids()")
    op.execute("DROP FUNCTION lma_org_for_webhook_event(bigint)")
    op.drop_table("webhook_events")
