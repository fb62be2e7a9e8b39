"""Phase 3b: row-level security on every tenant table, and the narrow cross-tenant lookup functions.

Every tenant table gets RLS ENABLED and FORCED (so even the table owner is filtered unless it is a superuser)
and one policy, ``<table>_organization_isolation``, with USING and WITH CHECK on

    organization_id = NULLIF(current_setting('app.current_organization_id', true), '')::integer

With no tenant set, or ``''`` left on a pooled connection by an earlier transaction, the expression is NULL
and every row is filtered: queries return nothing and raise nothing.

Cross-tenant work has exactly one path: SECURITY DEFINER functions returning ids only (never rows):
``lma_org_for_slack_team``, ``lma_integration_for_key`` and ``lma_organization_ids``. They run as the
migration owner; a SELECT-only policy for that owner on ``organizations`` and ``integrations`` lets them
work when the owner is not a superuser. ``lma-bot migrate`` grants EXECUTE on them to the runtime role.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('app.current_organization_id', true), '')::integer"

TENANT_TABLES = (
    "users",
    "leads",
    "workflows",
    "workflow_executions",
    "activity_logs",
    "lead_scoring_rules",
    "lead_score_history",
    "communications",
    "campaigns",
    "campaign_leads",
    "integrations",
    "lead_notes",
    "lead_assignments",
)
DEFINER_READ_TABLES = ("organizations", "integrations")

FUNCTIONS = (
    """
    CREATE FUNCTION lma_org_for_slack_team(team_id text) RETURNS integer
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        SELECT o.id FROM public.organizations o WHERE o.slack_team_id = team_id AND o.is_active
    $$
    """,
    """
    CREATE FUNCTION lma_integration_for_key(key_hash text)
    RETURNS TABLE (organization_id integer, integration_id integer)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        SELECT i.organization_id, i.id FROM public.integrations i
        WHERE i.webhook_key_hash = key_hash AND i.status <> 'inactive'
    $$
    """,
    """
    CREATE FUNCTION lma_organization_ids() RETURNS SETOF integer
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        SELECT o.id FROM public.organizations o WHERE o.is_active ORDER BY o.id
    $$
    """,
)
FUNCTION_SIGNATURES = (
    "lma_org_for_slack_team(text)",
    "lma_integration_for_key(text)",
    "lma_organization_ids()",
)


def upgrade() -> None:
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_organization_isolation ON {table} "
            f"USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
        )
    op.execute("ALTER TABLE organizations ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE organizations FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY organizations_organization_isolation ON organizations "
        f"USING (id = {CURRENT_ORG}) WITH CHECK (id = {CURRENT_ORG})"
    )
    for table in DEFINER_READ_TABLES:
        op.execute(f"CREATE POLICY {table}_definer_read ON {table} FOR SELECT TO CURRENT_USER USING (true)")
    for ddl in FUNCTIONS:
        op.execute(ddl)
    for signature in FUNCTION_SIGNATURES:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")


def downgrade() -> None:
    for signature in FUNCTION_SIGNATURES:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    for table in DEFINER_READ_TABLES:
        op.execute(f"DROP POLICY IF EXISTS {table}_definer_read ON {table}")
    op.execute("DROP POLICY IF EXISTS organizations_organization_isolation ON organizations")
    op.execute("ALTER TABLE organizations NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE organizations DISABLE ROW LEVEL SECURITY")
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS {table}_organization_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
