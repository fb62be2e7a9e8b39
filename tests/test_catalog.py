"""The database catalog matches the seed design and the tenancy rules (read from pg_catalog, not the models)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.config import DEFAULT_APP_ROLE
from lma_bot.db import Database
from lma_bot.models import LOOKUP_TABLES, TENANT_TABLES

# Every table and column named in SEED.md (columns of the "existing" tables as the seed's ALTERs and indexes
# name them).
SEED_COLUMNS: dict[str, set[str]] = {
    "users": {"id", "timezone", "preferences", "avatar_url"},
    "organizations": {"id", "subscription_tier", "billing_email"},
    "leads": {
        "id", "organization_id", "status", "score", "assigned_to_id", "linkedin_url",
        "lead_temperature", "expected_close_date", "last_engagement_date",
    },
    "workflow_executions": {"id", "workflow_id", "status", "started_at"},
    "activity_logs": {"id", "lead_id", "activity_type", "created_at"},
    "workflows": {
        "id", "organization_id", "n8n_workflow_id", "name", "description", "category", "trigger_type",
        "trigger_conditions", "configuration", "is_active", "created_by", "created_at", "updated_at",
    },
    "lead_scoring_rules": {
        "id", "organization_id", "name", "description", "rule_type", "criteria", "score_points",
        "is_active", "priority", "created_at", "updated_at",
    },
    "lead_score_history": {
        "id", "lead_id", "previous_score", "new_score", "score_change", "reason", "rule_id", "created_at",
    },
    "communications": {
        "id", "lead_id", "user_id", "communication_type", "direction", "subject", "content", "status",
        "scheduled_at", "completed_at", "metadata", "created_at", "updated_at",
    },
    "campaigns": {
        "id", "organization_id", "name", "description", "campaign_type", "status", "target_criteria",
        "start_date", "end_date", "budget_allocated", "budget_spent", "goals", "created_by", "created_at",
        "updated_at",
    },
    "campaign_leads": {
        "id", "campaign_id", "lead_id", "status", "added_at", "last_contact_at", "response_at", "conversion_at",
    },
    "integrations": {
        "id", "organization_id", "integration_type", "provider_name", "display_name", "configuration",
        "status", "last_sync_at", "sync_frequency_minutes", "error_message", "created_by", "created_at",
        "updated_at",
    },
    "lead_notes": {
        "id", "lead_id", "user_id", "note_type", "content", "is_private", "mentioned_users", "attachments",
        "created_at", "updated_at",
    },
    "lead_assignments": {
        "id", "lead_id", "assigned_from", "assigned_to", "assigned_by", "reason", "assigned_at",
    },
}  # fmt: skip

# Contract additions.
CONTRACT_COLUMNS = {
    "organizations": {"slack_team_id"},
    "users": {"slack_user_id", "role", "timezone", "is_active", "organization_id"},
}

SEED_INDEXES = {
    "idx_workflows_organization_id", "idx_workflows_n8n_id", "idx_workflows_trigger_type",
    "idx_workflows_category", "idx_scoring_rules_org_id", "idx_scoring_rules_type",
    "idx_score_history_lead_id", "idx_score_history_created_at", "idx_communications_lead_id",
    "idx_communications_user_id", "idx_communications_type", "idx_communications_scheduled_at",
    "idx_campaigns_organization_id", "idx_campaigns_status", "idx_campaigns_type",
    "idx_campaign_leads_campaign_id", "idx_campaign_leads_lead_id", "idx_campaign_leads_status",
    "idx_integrations_organization_id", "idx_integrations_type", "idx_integrations_status",
    "idx_lead_notes_lead_id", "idx_lead_notes_user_id", "idx_lead_notes_type", "idx_lead_notes_created_at",
    "idx_lead_assignments_lead_id", "idx_lead_assignments_assigned_to", "idx_lead_assignments_assigned_at",
    "idx_leads_org_status_score", "idx_leads_assigned_status", "idx_activity_logs_lead_type_date",
    "idx_communications_lead_type_date", "idx_campaign_leads_campaign_status",
    "idx_workflow_executions_workflow_status",
}  # fmt: skip

# The seed's performance indexes, with their exact definitions.
SEED_INDEX_DEFINITIONS = {
    "idx_leads_org_status_score": "(organization_id, status, score DESC)",
    "idx_leads_assigned_status": "(assigned_to_id, status) WHERE (assigned_to_id IS NOT NULL)",
    "idx_activity_logs_lead_type_date": "(lead_id, activity_type, created_at DESC)",
    "idx_communications_lead_type_date": "(lead_id, communication_type, completed_at DESC)",
    "idx_campaign_leads_campaign_status": "(campaign_id, status)",
    "idx_workflow_executions_workflow_status": "(workflow_id, status, started_at DESC)",
}


async def _rows(engine: AsyncEngine, sql: str, **params: object) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]


async def test_every_seed_table_and_column_exists(owner_engine: AsyncEngine) -> None:
    rows = await _rows(
        owner_engine,
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'",
    )
    present: dict[str, set[str]] = {}
    for table, column in rows:
        present.setdefault(str(table), set()).add(str(column))
    for table, columns in (SEED_COLUMNS | {}).items():
        assert table in present, f"missing table {table}"
        wanted = columns | CONTRACT_COLUMNS.get(table, set())
        assert wanted <= present[table], f"{table} lacks {sorted(wanted - present[table])}"
    notes = await _rows(
        owner_engine,
        "SELECT data_type, udt_name FROM information_schema.columns "
        "WHERE table_name = 'lead_notes' AND column_name = 'mentioned_users'",
    )
    assert notes == [("ARRAY", "_int4")], "mentioned_users is INTEGER[]"


async def test_every_seed_index_exists_with_its_definition(owner_engine: AsyncEngine) -> None:
    rows = await _rows(owner_engine, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    definitions = {str(name): str(definition) for name, definition in rows}
    missing = SEED_INDEXES - definitions.keys()
    assert not missing, f"missing seed indexes: {sorted(missing)}"
    for name, tail in SEED_INDEX_DEFINITIONS.items():
        assert definitions[name].endswith(tail), f"{name}: {definitions[name]}"
    for name in ("idx_leads_tags", "idx_leads_custom_fields", "idx_lead_notes_mentioned_users"):
        assert "USING gin" in definitions[name], name
    email = definitions["uq_leads_org_email"]
    assert "UNIQUE" in email
    assert "(organization_id, email_normalized)" in email
    generated = await _rows(
        owner_engine,
        "SELECT table_name, generation_expression FROM information_schema.columns "
        "WHERE column_name = 'email_normalized' ORDER BY table_name",
    )
    assert generated == [("leads", "lower((email)::text)"), ("users", "lower((email)::text)")]
    assert "deleted_at IS NULL" in email


async def test_every_tenant_table_has_org_in_primary_key_rls_forced_and_a_policy(
    owner_engine: AsyncEngine,
) -> None:
    tenant = set(TENANT_TABLES)
    assert len(tenant) == 18
    rows = await _rows(
        owner_engine,
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               (SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_constraint p
                  CROSS JOIN LATERAL unnest(p.conkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = p.conrelid AND a.attnum = k.attnum
                 WHERE p.conrelid = c.oid AND p.contype = 'p') AS pk,
               (SELECT array_agg(pol.polname || ':' || pg_get_expr(pol.polqual, pol.polrelid) || '|'
                                 || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), ''))
                  FROM pg_policy pol WHERE pol.polrelid = c.oid AND pol.polroles = '{0}') AS policies
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'alembic_version'
        """,
    )
    by_table = {str(r[0]): r for r in rows}
    expression = "(NULLIF(current_setting('app.current_organization_id'::text, true), ''::text))::integer"
    for table in tenant | set(LOOKUP_TABLES) | {"organizations"}:
        _, enabled, forced, pk, policies = by_table[table]
        assert (enabled, forced) == (True, True), f"{table}: RLS enabled and forced"
        assert policies, f"{table}: has a policy for everyone"
        key = "id" if table == "organizations" else "organization_id"
        using, check = str(policies[0]).split(":", 1)[1].split("|")  # type: ignore[index]
        assert using == check == f"({key} = {expression})", f"{table}: {policies}"
        if table in tenant:
            assert pk == ["organization_id", "id"], f"{table}: primary key {pk}"
        elif table in LOOKUP_TABLES:
            assert pk[:2] == ["organization_id", "lead_id"], f"{table}: primary key {pk}"  # type: ignore[index]
    # No table escapes: every table with organization_id is a tenant or lookup table.
    with_org = await _rows(
        owner_engine,
        "SELECT DISTINCT table_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_name = 'organization_id'",
    )
    assert {str(r[0]) for r in with_org} == tenant | set(LOOKUP_TABLES)
    assert set(LOOKUP_TABLES) == {"lead_search_terms", "lead_tags"}


async def test_foreign_keys_between_tenant_tables_carry_organization_id(owner_engine: AsyncEngine) -> None:
    rows = await _rows(
        owner_engine,
        """
        SELECT c.conname, src.relname, dst.relname,
               (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
               c.confdeltype::text, pg_get_constraintdef(c.oid)
          FROM pg_constraint c
          JOIN pg_class src ON src.oid = c.conrelid
          JOIN pg_class dst ON dst.oid = c.confrelid
         WHERE c.contype = 'f'
        """,
    )
    tenant = set(TENANT_TABLES)
    assert rows
    for name, source, target, columns, on_delete, definition in rows:
        cols = list(columns)  # type: ignore[call-overload]
        if target == "organizations":
            assert (cols, on_delete) == (["organization_id"], "c"), name
            continue
        assert {source, target} <= tenant | set(LOOKUP_TABLES), name
        assert len(cols) == 2, f"{name}: {cols}"
        assert cols[0] == "organization_id", f"{name}: {cols}"
        if target == "users" or (source, target) == ("lead_score_history", "lead_scoring_rules"):
            assert f"ON DELETE SET NULL ({cols[1]})" in str(definition), f"{name}: {definition}"
        else:
            assert on_delete == "c", f"{name}: organization-scoped data cascades"


async def test_every_foreign_key_column_is_indexed(owner_engine: AsyncEngine) -> None:
    fks = await _rows(
        owner_engine,
        """
        SELECT c.conrelid::regclass::text, c.conname,
               (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum)
          FROM pg_constraint c WHERE c.contype = 'f'
        """,
    )
    indexes = await _rows(
        owner_engine,
        """
        SELECT i.indrelid::regclass::text,
               (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
          FROM pg_index i
        """,
    )
    leading: dict[str, list[list[str]]] = {}
    for table, cols in indexes:
        leading.setdefault(str(table), []).append([str(c) for c in (cols or [])])  # type: ignore[attr-defined]
    for table, name, columns in fks:
        cols = [str(c) for c in columns]  # type: ignore[attr-defined]
        key = cols[-1]  # the referencing column proper (organization_id leads composite keys)
        covered = any(ix[:1] == [key] or ix[: len(cols)] == cols for ix in leading[str(table)])
        assert covered, f"{name}: no index leads with {key} or {cols}"


async def test_runtime_role_is_not_superuser_owner_or_bypassrls(
    owner_engine: AsyncEngine, db: Database
) -> None:
    async with db.engine.connect() as conn:
        user = (await conn.execute(text("SELECT current_user"))).scalar_one()
    assert user == DEFAULT_APP_ROLE
    role = await _rows(
        owner_engine,
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = :r",
        r=DEFAULT_APP_ROLE,
    )
    assert role == [(False, False, False, False)]
    owned = await _rows(
        owner_engine,
        "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND r.rolname = :r",
        r=DEFAULT_APP_ROLE,
    )
    assert owned == []
    alembic = await _rows(
        owner_engine, "SELECT has_table_privilege(:r, 'alembic_version', 'SELECT')", r=DEFAULT_APP_ROLE
    )
    assert alembic == [(False,)]


@pytest.mark.parametrize(
    ("table", "column", "bad"),
    [
        ("leads", "status", "zombie"),
        ("leads", "lead_temperature", "lukewarm"),
        ("users", "role", "boss"),
        ("communications", "direction", "sideways"),
        ("campaigns", "status", "exploded"),
        ("lead_notes", "note_type", "gossip"),
        ("lead_assignments", "status", "maybe"),
        ("integrations", "status", "broken"),
        ("workflow_executions", "status", "vibing"),
        ("organizations", "subscription_tier", "platinum"),
    ],
)
async def test_enum_like_columns_are_checked(
    owner_engine: AsyncEngine, table: str, column: str, bad: str
) -> None:
    rows = await _rows(
        owner_engine,
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.contype = 'c' "
        "AND c.conrelid = CAST(:t AS regclass) AND c.conname = :n",
        t=table,
        n=f"ck_{table}_{column}",
    )
    assert rows, f"no CHECK on {table}.{column}"
    assert f"'{bad}'" not in str(rows[0][0])
