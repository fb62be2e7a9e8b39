"""Lead services against real PostgreSQL as the runtime role."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.db import Database
from lma_bot.errors import InvalidInput, NotFound
from lma_bot.leads import repository
from lma_bot.leads.schemas import LeadCreate, LeadQuery, ListFilter
from lma_bot.leads.service import (
    DuplicateLead,
    InvalidTransition,
    change_status,
    create_lead,
    list_leads,
    resolve_lead,
)
from tests.support import new_org


async def _create(db: Database, org: int, **fields: object) -> int:
    async with db.uow(org) as session:
        lead = await create_lead(session, org_id=org, data=LeadCreate.model_validate(fields))
        return lead.id


async def test_create_then_duplicate_email_in_any_case_is_refused(db: Database) -> None:
    org = await new_org(db)
    lead_id = await _create(db, org, email="Ann@Acme.com", first_name="Ann", tags=["Q4", "q4 "])
    with pytest.raises(DuplicateLead) as caught:
        await _create(db, org, email="ann@ACME.com")
    assert caught.value.existing_id == lead_id
    async with db.uow(org) as session:
        count = (await session.execute(text("SELECT count(*), max(tags::text) FROM leads"))).one()
        assert tuple(count) == (1, "{q4}")
        logged = (
            await session.execute(
                text("SELECT count(*) FROM activity_logs WHERE lead_id = :l"), {"l": lead_id}
            )
        ).scalar()
        assert logged == 1


async def test_same_email_in_two_organizations_is_fine(db: Database) -> None:
    a, b = await new_org(db), await new_org(db)
    assert await _create(db, a, email="x@y.io") != await _create(db, b, email="x@y.io")


async def test_concurrent_creates_of_one_email_make_one_lead(db: Database) -> None:
    org = await new_org(db)
    results = await asyncio.gather(
        *(_create(db, org, email="race@x.io") for _ in range(8)), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, int)]
    assert len(created) == 1
    assert all(
        isinstance(r, DuplicateLead) and r.existing_id == created[0] for r in results if r not in created
    )


async def test_resolve_by_number_hash_or_email(db: Database) -> None:
    org = await new_org(db)
    lead_id = await _create(db, org, email="ann@acme.com")
    async with db.uow(org) as session:
        for ref in (str(lead_id), f"#{lead_id}", "ANN@acme.com"):
            assert (await resolve_lead(session, org_id=org, ref=ref)).id == lead_id
        with pytest.raises(NotFound, match="no lead with the email"):
            await resolve_lead(session, org_id=org, ref="bob@acme.com")
        with pytest.raises(InvalidInput, match="use its number or email"):
            await resolve_lead(session, org_id=org, ref="ann")


async def test_status_transitions(db: Database) -> None:
    org = await new_org(db)
    lead_id = await _create(db, org, email="s@x.io")
    async with db.uow(org) as session:
        lead, previous = await change_status(
            session, org_id=org, lead_id=lead_id, status="contacted", actor_id=None
        )
        assert (previous, lead.status) == ("new", "contacted")
    with pytest.raises(InvalidTransition) as caught:
        async with db.uow(org) as session:
            await change_status(session, org_id=org, lead_id=lead_id, status="won", actor_id=None)
    assert str(caught.value) == (
        f"lead {lead_id} can't go from contacted to won; from contacted it can go to qualified, unqualified, lost"
    )
    with pytest.raises(InvalidInput, match="unknown status 'zombie'"):
        async with db.uow(org) as session:
            await change_status(session, org_id=org, lead_id=lead_id, status="zombie", actor_id=None)


async def test_pages_walk_forward_and_back_newest_first(db: Database, owner_engine: object) -> None:
    org = await new_org(db)
    ids = [await _create(db, org, email=f"p{i}@x.io") for i in range(25)]
    newest_first = list(reversed(ids))
    seen: list[int] = []
    async with db.uow(org) as session:
        page = await list_leads(session, org_id=org, viewer_id=0, query=LeadQuery(), limit=10)
        pages = [page]
        while page.has_next:
            page = await list_leads(
                session, org_id=org, viewer_id=0, query=LeadQuery(), after=page.last, limit=10
            )
            pages.append(page)
        for p in pages:
            seen.extend(i.id for i in p.items)
        assert seen == newest_first
        assert [p.has_prev for p in pages] == [False, True, True]
        back = await list_leads(
            session, org_id=org, viewer_id=0, query=LeadQuery(), before=pages[2].first, limit=10
        )
        assert [i.id for i in back.items] == [i.id for i in pages[1].items]
        assert back.has_prev
        assert back.has_next


async def test_find_and_filters(db: Database) -> None:
    org = await new_org(db)
    acme = await _create(db, org, email="ann@acme.com", first_name="Ann", company="Acme Corp", tags=["q4"])
    globex = await _create(db, org, email="hank@globex.io", first_name="Hank", last_name="Scorpio")
    async with db.uow(org) as session:

        async def found(**query: object) -> list[int]:
            page = await list_leads(session, org_id=org, viewer_id=0, query=LeadQuery.model_validate(query))
            return [i.id for i in page.items]

        assert await found(text="acm") == [acme]
        assert await found(text="ACME corp") == [acme]
        assert await found(text="globex") == [globex]
        assert await found(text="scorp hank") == [globex]
        assert await found(text="nobody") == []
        assert await found(filter=ListFilter.TAG, value="q4") == [acme]
        assert await found(filter=ListFilter.UNASSIGNED) == [globex, acme]
        assert await found(filter=ListFilter.STATUS, value="new") == [globex, acme]
        with pytest.raises(InvalidInput, match="find needs a word"):
            await found(text="!!!")


async def _lookup_rows(db: Database, org: int, lead_id: int) -> tuple[set[str], set[str]]:
    async with db.uow(org) as session:
        terms = await session.execute(
            text("SELECT term FROM lead_search_terms WHERE lead_id = :l"), {"l": lead_id}
        )
        tags = await session.execute(text("SELECT tag FROM lead_tags WHERE lead_id = :l"), {"l": lead_id})
        return set(terms.scalars()), set(tags.scalars())


async def test_lookup_tables_follow_every_change_of_a_lead(db: Database) -> None:
    org = await new_org(db)
    lead = await _create(db, org, email="ann.lee@acme.com", first_name="Ann", tags=["q4", "emea"])
    terms, tags = await _lookup_rows(db, org, lead)
    assert {"ann", "lee", "acme", "com", "ann.lee@acme.com"} <= terms
    assert tags == {"q4", "emea"}

    async with db.uow(org) as session:
        await session.execute(
            text("UPDATE leads SET first_name = 'Anna', tags = '{q1}' WHERE id = :l"), {"l": lead}
        )
    terms, tags = await _lookup_rows(db, org, lead)
    assert "anna" in terms
    assert "ann" in terms
    assert tags == {"q1"}

    async with db.uow(org) as session:  # soft delete: gone from find and tag lists
        await session.execute(text("UPDATE leads SET deleted_at = now() WHERE id = :l"), {"l": lead})
    assert await _lookup_rows(db, org, lead) == (set(), set())
    async with db.uow(org) as session:
        page = await list_leads(session, org_id=org, viewer_id=0, query=LeadQuery(text="anna"))
        assert page.items == []

    async with db.uow(org) as session:  # restored: back again
        await session.execute(text("UPDATE leads SET deleted_at = NULL WHERE id = :l"), {"l": lead})
        page = await list_leads(session, org_id=org, viewer_id=0, query=LeadQuery(text="anna"))
        assert [i.id for i in page.items] == [lead]

    async with db.uow(org) as session:  # hard delete cascades
        await session.execute(text("DELETE FROM leads WHERE id = :l"), {"l": lead})
        left = await session.execute(text("SELECT count(*) FROM lead_search_terms"))
        assert left.scalar_one() == 0


async def test_prefix_match_is_exact_at_code_point_boundaries(db: Database) -> None:
    org = await new_org(db)
    zoe = await _create(db, org, first_name="Zoë", company="Ærø Ltd")
    zz = await _create(db, org, first_name="Zz", company="Top")
    async with db.uow(org) as session:

        async def found(text: str) -> list[int]:
            page = await list_leads(session, org_id=org, viewer_id=0, query=LeadQuery(text=text))
            return [i.id for i in page.items]

        assert await found("zo") == [zoe]
        assert await found("z") == [zz, zoe]
        assert await found("ærø") == [zoe]
        assert await found("zoë ltd") == [zoe]
        assert await found("zoe") == []


async def test_tag_pages_walk_forward_and_back(db: Database) -> None:
    org = await new_org(db)
    tagged = [
        await _create(db, org, email=f"t{i}@x.io", tags=["hot"] if i % 2 else ["hot", "q4"]) for i in range(9)
    ]
    await _create(db, org, email="untagged@x.io")
    query = LeadQuery(filter=ListFilter.TAG, value="hot")
    async with db.uow(org) as session:
        first = await list_leads(session, org_id=org, viewer_id=0, query=query, limit=4)
        second = await list_leads(session, org_id=org, viewer_id=0, query=query, after=first.last, limit=4)
        third = await list_leads(session, org_id=org, viewer_id=0, query=query, after=second.last, limit=4)
        back = await list_leads(session, org_id=org, viewer_id=0, query=query, before=third.first, limit=4)
    walked = [i.id for p in (first, second, third) for i in p.items]
    assert walked == list(reversed(tagged))
    assert (first.has_next, second.has_next, third.has_next) == (True, True, False)
    assert [i.id for i in back.items] == [i.id for i in second.items]


@pytest.mark.parametrize(
    ("selective", "first", "window"),
    [(2000, 500, 3000), (1, 500, 3000), (1, 2, 3000), (1, 2, 3), (1, 1, 1)],
    ids=["drive", "walk", "short-walk-then-walk", "walks-then-intersect", "intersect"],
)
async def test_find_pages_are_exact_whichever_way_they_are_found(
    db: Database,
    owner_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    selective: int,
    first: int,
    window: int,
) -> None:
    """Every way `find` can look (drive from a selective word, walk the newest leads, or join the words'
    entries when the walk's window is too short) gives the pages a direct query on ``leads`` gives: newest
    first by (created_at, id), ties included, soft-deleted leads left out, forward and back."""
    monkeypatch.setattr(repository, "FIND_SELECTIVE", selective)
    monkeypatch.setattr(repository, "FIND_FIRST_WINDOW", first)
    monkeypatch.setattr(repository, "FIND_WINDOW", window)
    org = await new_org(db)
    for i in range(40):
        last = "Jones" if i % 3 == 0 else ("Quarshie" if i % 17 == 5 else "Smith")
        company = "Acme" if i % 2 else "Smithfield"
        await _create(
            db, org, email=f"l{i}@x{i % 4}.io", first_name=f"N{i % 5}", last_name=last, company=company
        )
    async with owner_engine.begin() as conn:  # ties on created_at, and soft-deleted matches
        await conn.execute(
            text(
                "UPDATE leads SET created_at = timestamptz '2026-01-01' + (id / 3) * interval '1 hour', "
                "deleted_at = CASE WHEN id % 7 = 0 THEN now() END WHERE organization_id = :o"
            ),
            {"o": org},
        )
    for words in ("smith", "sm", "smith jones", "jo smi", "n1 acme", "quarsh", "acme quarshie x1", "zzz"):
        async with owner_engine.connect() as conn:
            want = list(
                (
                    await conn.execute(
                        text(
                            "SELECT id FROM leads WHERE organization_id = :o AND deleted_at IS NULL "
                            "AND search_vector @@ to_tsquery('simple', :q) ORDER BY created_at DESC, id DESC"
                        ),
                        {"o": org, "q": " & ".join(w + ":*" for w in words.split())},
                    )
                ).scalars()
            )
        async with db.uow(org) as session:
            query = LeadQuery(text=words)
            page = await list_leads(session, org_id=org, viewer_id=0, query=query, limit=4)
            pages = [page]
            while page.has_next:
                page = await list_leads(
                    session, org_id=org, viewer_id=0, query=query, after=page.last, limit=4
                )
                pages.append(page)
            assert [i.id for p in pages for i in p.items] == want, words
            if len(pages) > 2:
                back = await list_leads(
                    session, org_id=org, viewer_id=0, query=query, before=pages[2].first, limit=4
                )
                assert [i.id for i in back.items] == [i.id for i in pages[1].items], words
                assert back.has_prev == (pages[1].has_prev), words
