"""The tenant wall: as the runtime role, organization A can neither see nor touch organization B's rows in
any tenant table; with no tenant set nothing is visible; and even the owner (RLS bypassed) cannot make a row
point at another organization's row."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.db import Database, TenantError
from lma_bot.models import TENANT_TABLES
from tests.support import SEED_ORDER, fill_every_table, new_org, row_values

# Columns each table can be updated on harmlessly.
UPDATE_COLUMN = {
    "users": "name = 'Hacked'",
    "leads": "company = 'Hacked'",
    "reminders": "message = 'Hacked'",
    "workflows": "name = 'Hacked'",
    "workflow_executions": "error_message = 'Hacked'",
    "activity_logs": "description = 'Hacked'",
    "lead_scoring_rules": "name = 'Hacked'",
    "lead_score_history": "reason = 'Hacked'",
    "lead_events": "event_type = 'hacked'",
    "communications": "subject = 'Hacked'",
    "campaigns": "name = 'Hacked'",
    "campaign_leads": "status = 'excluded'",
    "integrations": "display_name = 'Hacked'",
    "lead_notes": "content = 'Hacked'",
    "lead_assignments": "reason = 'Hacked'",
    "slack_installations": "team_name = 'Hacked'",
    "webhook_events": "error = 'Hacked'",
    "assignment_rotations": "scope = 'hacked'",
}


def test_every_tenant_table_is_seeded_and_updatable() -> None:
    assert set(SEED_ORDER) == set(TENANT_TABLES) == set(UPDATE_COLUMN)


async def _count(engine: AsyncEngine, table: str, org: int) -> int:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE organization_id = :o"), {"o": org}
        )
        return int(result.scalar_one())


async def test_tenant_a_cannot_read_update_delete_or_insert_b_rows(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org_a, org_b = await new_org(db), await new_org(db)
    await fill_every_table(db, org_a)
    ids_b = await fill_every_table(db, org_b)
    before_b = {table: await _count(owner_engine, table, org_b) for table in SEED_ORDER}

    for table in SEED_ORDER:
        async with db.uow(org_a) as session:
            seen = await session.execute(text(f"SELECT organization_id, id FROM {table}"))
            rows = seen.all()
            assert rows, f"{table}: A sees its own row"
            assert {r.organization_id for r in rows} == {org_a}, f"{table}: A sees only A"
            by_id = await session.execute(
                text(f"SELECT count(*) FROM {table} WHERE id = :id"), {"id": ids_b[table]}
            )
            assert by_id.scalar_one() == 0, f"{table}: B's row by id is invisible to A"
            updated = await session.execute(
                text(f"UPDATE {table} SET {UPDATE_COLUMN[table]} WHERE organization_id = :b"), {"b": org_b}
            )
            assert updated.rowcount == 0, f"{table}: A updated B's rows"
            deleted = await session.execute(
                text(f"DELETE FROM {table} WHERE organization_id = :b"), {"b": org_b}
            )
            assert deleted.rowcount == 0, f"{table}: A deleted B's rows"

        values = row_values(table, org_b, ids_b)
        columns = ", ".join(values)
        params = ", ".join(f":{c}" for c in values)
        with pytest.raises(DBAPIError, match="row-level security"):
            async with db.uow(org_a) as session:
                await session.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({params})"), values)

        assert await _count(owner_engine, table, org_b) == before_b[table], f"{table}: B's rows intact"

    # Organizations themselves: A sees only itself.
    async with db.uow(org_a) as session:
        orgs = (await session.execute(text("SELECT id FROM organizations"))).scalars().all()
        assert list(orgs) == [org_a]
        gone = await session.execute(text("DELETE FROM organizations WHERE id = :b"), {"b": org_b})
        assert gone.rowcount == 0


async def test_no_tenant_set_sees_nothing_and_raises_nothing(db: Database) -> None:
    org = await new_org(db)
    await fill_every_table(db, org)
    async with db.engine.connect() as conn:
        for table in (*TENANT_TABLES, "organizations"):
            count = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            assert count == 0, table
        await conn.rollback()


async def test_empty_tenant_left_on_pooled_connection_sees_nothing(db: Database) -> None:
    org = await new_org(db)
    await fill_every_table(db, org)
    async with db.engine.connect() as conn:
        await conn.execute(
            text("SELECT set_config('app.current_organization_id', :o, true)"), {"o": str(org)}
        )
        assert (await conn.execute(text("SELECT count(*) FROM leads"))).scalar_one() == 1
        await conn.commit()
        # Same connection, next transaction: the local setting is gone, '' remains as the placeholder value.
        leftover = (
            await conn.execute(text("SELECT current_setting('app.current_organization_id', true)"))
        ).scalar()
        assert leftover == ""
        for table in TENANT_TABLES:
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0, table
        await conn.rollback()


async def test_uow_sets_tenant_only_for_its_transaction(db: Database) -> None:
    org = await new_org(db)
    async with db.uow(org) as session:
        value = (
            await session.execute(text("SELECT current_setting('app.current_organization_id')"))
        ).scalar()
        assert value == str(org)
    # A later unit of work for no one (raw connection) sees no tenant.
    async with db.engine.connect() as conn:
        value = (
            await conn.execute(text("SELECT current_setting('app.current_organization_id', true)"))
        ).scalar()
        assert value in (None, "")


@pytest.mark.parametrize("bad", [0, -1, True, "1"])
async def test_uow_refuses_what_is_not_an_organization_id(db: Database, bad: object) -> None:
    with pytest.raises(TenantError):
        async with db.uow(bad):  # type: ignore[arg-type]
            pass


async def test_uow_rolls_back_on_error(db: Database, owner_engine: AsyncEngine) -> None:
    org = await new_org(db)

    async def failing_unit_of_work() -> None:
        async with db.uow(org) as session:
            await session.execute(
                text("INSERT INTO users (organization_id, email, name) VALUES (:o, 'x@example.com', 'X')"),
                {"o": org},
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await failing_unit_of_work()
    assert await _count(owner_engine, "users", org) == 0


@pytest.mark.parametrize(
    ("table", "column", "target"),
    [
        ("lead_notes", "lead_id", "leads"),
        ("lead_assignments", "assigned_to", "users"),
        ("lead_score_history", "lead_id", "leads"),
        ("communications", "lead_id", "leads"),
        ("campaign_leads", "campaign_id", "campaigns"),
        ("workflow_executions", "workflow_id", "workflows"),
    ],
)
async def test_owner_cannot_point_a_row_at_another_organizations_row(
    db: Database, owner_engine: AsyncEngine, table: str, column: str, target: str
) -> None:
    org_a, org_b = await new_org(db), await new_org(db)
    ids_a = await fill_every_table(db, org_a)
    ids_b = await fill_every_table(db, org_b)
    values = row_values(table, org_a, ids_a)
    values[column] = ids_b[target]  # B's row, from an A row
    columns = ", ".join(values)
    params = ", ".join(f":{c}" for c in values)
    with pytest.raises(IntegrityError, match="foreign key"):
        async with owner_engine.begin() as conn:
            await conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({params})"), values)


async def test_deleting_a_user_keeps_history_and_nulls_only_the_user_column(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    ids = await fill_every_table(db, org)
    async with db.uow(org) as session:
        await session.execute(text("DELETE FROM users WHERE id = :u"), {"u": ids["users"]})
    async with db.uow(org) as session:
        note = (
            await session.execute(
                text("SELECT organization_id, user_id FROM lead_notes WHERE id = :n"),
                {"n": ids["lead_notes"]},
            )
        ).one()
        assert note.organization_id == org
        assert note.user_id is None
        lead = (await session.execute(text("SELECT assigned_to_id FROM leads"))).scalar_one()
        assert lead is None
        assignment = (
            await session.execute(text("SELECT assigned_to, assigned_by FROM lead_assignments"))
        ).one()
        assert tuple(assignment) == (None, None)


async def test_deleting_an_organization_cascades_to_every_tenant_table(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org = await new_org(db)
    await fill_every_table(db, org)
    async with owner_engine.begin() as conn:
        await conn.execute(text("DELETE FROM organizations WHERE id = :o"), {"o": org})
    for table in TENANT_TABLES:
        assert await _count(owner_engine, table, org) == 0, table


async def test_lookup_tables_hold_only_the_tenants_own_words_and_tags(db: Database) -> None:
    org_a, org_b = await new_org(db), await new_org(db)
    for org, word in ((org_a, "alpha"), (org_b, "bravo")):
        async with db.uow(org) as session:
            await session.execute(
                text(
                    "INSERT INTO leads (organization_id, first_name, tags) VALUES (:o, :w, ARRAY[CAST(:t AS varchar)])"
                ),
                {"o": org, "w": word, "t": word},
            )
    async with db.uow(org_a) as session:
        terms = (await session.execute(text("SELECT organization_id, term FROM lead_search_terms"))).all()
        tags = (await session.execute(text("SELECT organization_id, tag FROM lead_tags"))).all()
        assert [tuple(r) for r in terms] == [(org_a, "alpha")]
        assert [tuple(r) for r in tags] == [(org_a, "alpha")]
        lead_b = (
            await session.execute(text("SELECT count(*) FROM lead_search_terms WHERE term = 'bravo'"))
        ).scalar_one()
        assert lead_b == 0
        with pytest.raises(DBAPIError, match="row-level security"):
            async with session.begin_nested():
                await session.execute(
                    text("INSERT INTO lead_tags VALUES (:b, 1, 'forged', now())"), {"b": org_b}
                )
