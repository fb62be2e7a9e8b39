"""Lookups the bot makes on every request use their indexes *under row-level security*, as the runtime role.

PostgreSQL only turns a condition into an index condition below an RLS policy when its operator is
leakproof: `lower(email) = x` or a row comparison `(a, b) < (x, y)` would silently become a filter over
every row of the organization. These plans pin the leakproof spellings the repositories use.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.dialects import postgresql
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
    ]:
        plan = await _plan(db, org, leads.page(org, query, viewer_id=1, after=cursor, before=None, limit=10))
        assert index in plan, plan
        assert "Sort" not in plan, plan
        assert "created_at <=" in plan.split("Index Cond")[1], plan


async def test_find_and_tag_read_their_lookup_indexes(db: Database, owner_engine: AsyncEngine) -> None:
    org = await _org_with_leads(db, owner_engine)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE leads SET last_name = CASE WHEN id % 500 = 0 THEN 'Quarshie' ELSE 'Smith' END, "
                "tags = CASE WHEN id % 3 = 0 THEN ARRAY['emea', 'q4'] ELSE ARRAY['amer'] END::varchar[] "
                "WHERE organization_id = :o"
            ),
            {"o": org},
        )
        await conn.execute(text("ANALYZE leads, lead_search_terms, lead_tags"))
    for words in ("quarsh", "smith lead", "lead7"):
        plan = await _plan(
            db, org, leads.page(org, LeadQuery(text=words), viewer_id=1, after=None, before=None, limit=10)
        )
        assert "lead_search_terms" in plan, plan
        assert "Seq Scan" not in plan, plan
        conds = " ".join(line for line in plan.splitlines() if "Index Cond" in line)
        assert "term >=" in conds, plan  # the prefix range is an index condition, not a filter
    cursor = Cursor(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=30), id=10**9)
    for after in (None, cursor):
        query = LeadQuery(filter=ListFilter.TAG, value="q4")
        plan = await _plan(db, org, leads.page(org, query, viewer_id=1, after=after, before=None, limit=10))
        assert "idx_lead_tags_org_tag_created" in plan, plan
        assert "Sort" not in plan, plan
        assert "Seq Scan" not in plan, plan
