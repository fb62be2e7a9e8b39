"""Lookups the bot makes on every request use their indexes *under row-level security*, as the runtime role.

PostgreSQL only turns a condition into an index condition below an RLS policy when its operator is
leakproof: `lower(email) = x` or a row comparison `(a, b) < (x, y)` would silently become a filter over
every row of the organization. These plans pin the leakproof spellings the repositories use.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.db import Database
from lma_bot.leads import repository as leads
from lma_bot.leads.schemas import Cursor, LeadQuery, ListFilter
from lma_bot.users import repository as users
from tests.support import new_org


async def _org_with_leads(db: Database, owner: AsyncEngine, count: int = 5000) -> int:
    """An organization with ``count`` leads (and a second one with as many), analyzed, so plans are real."""
    org, other = await new_org(db), await new_org(db)
    async with owner.begin() as conn:
        for target in (org, other):
            await conn.execute(
                text(
                    "INSERT INTO leads (organization_id, email, first_name, status, assigned_to_id, created_at) "
                    "SELECT :o, 'lead' || g || '@example.com', 'Lead', "
                    "(ARRAY['new','contacted','qualified'])[1 + g % 3], NULL, now() - g * interval '1 minute' "
                    "FROM generate_series(1, :n) g"
                ),
                {"o": target, "n": count},
            )
        await conn.execute(text("ANALYZE leads"))
    return org


async def _plan(db: Database, org: int, statement: object) -> str:
    compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
    async with db.uow(org) as session:
        rows = await session.execute(text(f"EXPLAIN {compiled}"))
        return "\n".join(str(r[0]) for r in rows)


async def test_lead_by_email_uses_the_unique_index(db: Database, owner_engine: AsyncEngine) -> None:
    org = await _org_with_leads(db, owner_engine)
    plan = await _plan(db, org, leads.by_email(org, "Ann@Acme.com"))
    assert "uq_leads_org_email" in plan
    assert "email_normalized" in plan.split("Index Cond")[1].splitlines()[0], plan


async def test_user_by_email_uses_the_unique_index(db: Database, owner_engine: AsyncEngine) -> None:
    org = await new_org(db)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO users (organization_id, email, name) "
                "SELECT :o, 'user' || g || '@example.com', 'U' FROM generate_series(1, 3000) g"
            ),
            {"o": org},
        )
        await conn.execute(text("ANALYZE users"))
    plan = await _plan(db, org, users.by_email(org, "Ann@Acme.com"))
    assert "uq_users_org_email" in plan, plan


async def test_next_page_seeks_by_index_instead_of_sorting(db: Database, owner_engine: AsyncEngine) -> None:
    org = await _org_with_leads(db, owner_engine)
    cursor = Cursor(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=30), id=10**9)
    for query, index in [
        (LeadQuery(filter=ListFilter.UNASSIGNED), "idx_leads_org_unassigned_created"),
        (LeadQuery(filter=ListFilter.STATUS, value="new"), "idx_leads_org_status_created"),
        (LeadQuery(filter=ListFilter.MINE), "idx_leads_org_owner_created"),
        (LeadQuery(filter=ListFilter.HOT), "idx_leads_org_temperature_created"),
    ]:
        plan = await _plan(db, org, leads.page(org, query, viewer_id=1, after=cursor, before=None, limit=10))
        assert index in plan, plan
        assert "Sort" not in plan, plan
        assert "created_at <=" in plan.split("Index Cond")[1], plan


async def _prepared_plans(db: Database, org: int, statement: object) -> dict[str, str]:
    """The statement as asyncpg sends it (``$n`` parameters), ``PREPARE``d and explained with a custom and with
    a generic plan: a cached statement may switch to the generic one after five executions."""
    compiled = statement.compile(  # type: ignore[attr-defined]
        dialect=asyncpg.dialect(), compile_kwargs={"render_postcompile": True}
    )
    params = compiled.construct_params()
    values = [params[name] for name in compiled.positiontup]

    def literal(value: object) -> str:
        if isinstance(value, int):
            return str(value)
        shown = value.isoformat() if isinstance(value, dt.datetime) else str(value)
        return "'" + shown.replace("'", "''") + "'"

    execute = f"EXECUTE p({', '.join(literal(v) for v in values)})" if values else "EXECUTE p"
    plans = {}
    for mode in ("force_custom_plan", "force_generic_plan"):
        async with db.uow(org) as session:
            await session.execute(text(f"SET LOCAL plan_cache_mode = {mode}"))
            await session.execute(text(f"PREPARE p AS {compiled.string}"))
            rows = await session.execute(text(f"EXPLAIN {execute}"))
            plans[mode] = "\n".join(str(r[0]) for r in rows)
            await session.execute(text("DEALLOCATE p"))
    return plans


def _index_conds(plan: str) -> str:
    return " ".join(line for line in plan.splitlines() if "Index Cond" in line)


async def test_find_reads_lookup_indexes_in_every_mode_with_either_plan(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org = await _org_with_leads(db, owner_engine)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE leads SET last_name = CASE WHEN id % 500 = 0 THEN 'Quarshie' ELSE 'Smith' END "
                "WHERE organization_id = :o"
            ),
            {"o": org},
        )
        await conn.execute(text("ANALYZE leads, lead_search_terms, lead_tags"))
    cursor = Cursor(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=30), id=10**9)

    def find(words: str, plan: leads.FindPlan, after: Cursor | None = None) -> object:
        return leads.page(
            org, LeadQuery(text=words), viewer_id=1, after=after, before=None, limit=10, find=plan
        )

    counts = await _prepared_plans(db, org, leads.word_counts(org, "smith quarsh"))
    for plan in counts.values():  # counting stops at FIND_SELECTIVE entries, in the index
        assert "Seq Scan" not in plan, plan
        assert "idx_lead_search_terms_org_term" in plan, plan
        assert "term >=" in _index_conds(plan), plan

    drive = leads.FindPlan(leads.FindMode.DRIVE, driver=0)
    for after in (None, cursor):
        for plan in (await _prepared_plans(db, org, find("quarsh smith", drive, after))).values():
            # (at this scale a generic plan may read the 10,000 leads whole rather than probe them one by one)
            assert "Seq Scan on lead_search_terms" not in plan, plan
            assert "idx_lead_search_terms_org_term" in plan, plan  # the rare word drives
            assert "SubPlan" in plan, plan  # the other word: one probe per candidate, never a join
            assert "pk_lead_search_terms" in plan, plan
            conds = _index_conds(plan)
            assert "term >=" in conds, plan
            assert "lead_id =" in conds, plan

    walk = leads.FindPlan(leads.FindMode.WALK, driver=0)
    for after in (None, cursor):
        for plan in (await _prepared_plans(db, org, find("smith lead", walk, after))).values():
            assert "Seq Scan" not in plan, plan
            assert "idx_leads_org_created_at" in plan, plan  # newest first, stops at the page
            assert "pk_lead_search_terms" in plan, plan
            assert "Limit" in plan, plan
            if after is not None:
                assert "created_at <=" in _index_conds(plan), plan

    intersect = leads.FindPlan(leads.FindMode.INTERSECT, driver=0)
    for after in (None, cursor):
        for plan in (await _prepared_plans(db, org, find("quarsh smith", intersect, after))).values():
            assert "Seq Scan on lead_search_terms" not in plan, plan
            assert "Full Join" in plan, plan  # hash or merge: never a nested loop over a word's entries
            conds = _index_conds(plan)
            assert "'quarsh'" in conds, plan  # the words are in the SQL: planned for them even when generic
            assert "'smith'" in conds, plan
            assert "$1" not in plan, plan  # no parameters at all: a generic plan is the custom plan


async def test_tag_pages_read_the_tag_index_in_order(db: Database, owner_engine: AsyncEngine) -> None:
    org = await _org_with_leads(db, owner_engine)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE leads SET "
                "tags = CASE WHEN id % 3 = 0 THEN ARRAY['emea', 'q4'] ELSE ARRAY['amer'] END::varchar[] "
                "WHERE organization_id = :o"
            ),
            {"o": org},
        )
        await conn.execute(text("ANALYZE leads, lead_search_terms, lead_tags"))
    cursor = Cursor(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=30), id=10**9)
    for after in (None, cursor):
        query = LeadQuery(filter=ListFilter.TAG, value="q4")
        plan = await _plan(db, org, leads.page(org, query, viewer_id=1, after=after, before=None, limit=10))
        assert "idx_lead_tags_org_tag_created" in plan, plan
        assert "Sort" not in plan, plan
        assert "Seq Scan" not in plan, plan
