"""``leads.search_vector`` is kept by a trigger (migration 0016): computed on insert and when a name, company
or email column is written, exactly as the former generated column; not touched by other updates (a score);
a direct write cannot set it; the lookup table follows it."""

from __future__ import annotations

from sqlalchemy import text

from lma_bot.db import Database
from tests.support import new_org

EXPECTED = (
    "to_tsvector('simple'::regconfig, coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || "
    "coalesce(company, '') || ' ' || coalesce(email, '') || ' ' || "
    "coalesce(regexp_replace(email, '[@._+-]+', ' ', 'g'), ''))"
)


async def _vector(db: Database, org: int, lead_id: int) -> tuple[str, bool, list[str]]:
    async with db.uow(org) as session:
        row = (
            await session.execute(
                text(f"SELECT search_vector::text, search_vector = {EXPECTED} FROM leads WHERE id = :id"),
                {"id": lead_id},
            )
        ).one()
        terms = (
            await session.execute(
                text("SELECT term FROM lead_search_terms WHERE lead_id = :id ORDER BY term"), {"id": lead_id}
            )
        ).scalars()
        return str(row[0]), bool(row[1]), [str(t) for t in terms]


async def test_search_vector_follows_name_company_email_only(db: Database) -> None:
    org = await new_org(db)
    async with db.uow(org) as session:
        lead_id = (
            await session.execute(
                text(
                    "INSERT INTO leads (organization_id, first_name, company, email, search_vector) "
                    "VALUES (:o, 'Ann', 'Acme Labs', 'ann.lee@acme.io', 'bogus') RETURNING id"
                ),
                {"o": org},
            )
        ).scalar_one()
    vector, same, terms = await _vector(db, org, lead_id)
    assert same, vector
    assert terms == ["acme", "ann", "ann.lee@acme.io", "io", "labs", "lee"], terms

    async with db.uow(org) as session:  # a direct write is recomputed away
        await session.execute(
            text("UPDATE leads SET score = score + 5, search_vector = 'zzz' WHERE id = :id"), {"id": lead_id}
        )
    assert await _vector(db, org, lead_id) == (vector, True, terms)

    async with db.uow(org) as session:
        await session.execute(text("UPDATE leads SET score = score + 1 WHERE id = :id"), {"id": lead_id})
        await session.execute(
            text("UPDATE leads SET company = 'Globex', last_name = 'Lee-Smith' WHERE id = :id"),
            {"id": lead_id},
        )
    vector, same, terms = await _vector(db, org, lead_id)
    assert same, vector
    assert terms == ["acme", "ann", "ann.lee@acme.io", "globex", "io", "lee", "lee-smith", "smith"], terms
