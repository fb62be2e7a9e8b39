"""Assignments against real PostgreSQL: automatic assignment under concurrent creates, requests, decisions,
cancellation and expiry."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import select

from lma_bot.assignments import service
from lma_bot.db import Database
from lma_bot.errors import InvalidInput, PermissionDenied
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import build_card, create_lead
from lma_bot.models import ActivityLog, Lead, LeadAssignment, User
from lma_bot.users.schemas import UserCreate
from lma_bot.users.service import add_user
from tests.support import new_org


async def _people(db: Database, org: int, roles: dict[str, str]) -> dict[str, User]:
    out = {}
    async with db.uow(org) as session:
        for name, role in roles.items():
            out[name] = await add_user(
                session,
                org_id=org,
                data=UserCreate(email=f"{name}@acme.test", name=name.title(), role=role),  # type: ignore[arg-type]
            )
    return out


async def _admin_settings(db: Database, org: int, admin: User, **kw: object) -> None:
    async with db.uow(org) as session:
        if "strategy" in kw:
            await service.set_strategy(session, org_id=org, actor=admin, strategy=str(kw["strategy"]))
        if "capacity" in kw:
            await service.set_org_capacity(session, org_id=org, actor=admin, capacity=kw["capacity"])  # type: ignore[arg-type]
        if "expiry" in kw:
            await service.set_expiry(session, org_id=org, actor=admin, hours=int(kw["expiry"]))  # type: ignore[call-overload]


async def _create(db: Database, org: int, n: int, *, owner: int | None = None) -> int:
    async with db.uow(org) as session:
        lead = await create_lead(
            session, org_id=org, data=LeadCreate(email=f"lead{n}@prospect.test", assigned_to_id=owner)
        )
        return lead.id


async def _owners(db: Database, org: int) -> Counter[int | None]:
    async with db.uow(org) as session:
        return Counter((await session.execute(select(Lead.assigned_to_id))).scalars())


async def test_round_robin_1000_leads_by_20_concurrent_tasks_is_even_and_skips_inactive_and_away(
    db: Database,
) -> None:
    org = await new_org(db)
    roles = {f"rep{i}": "rep" for i in range(7)} | {"boss": "admin"}
    people = await _people(db, org, roles)
    admin = people["boss"]
    async with db.uow(org) as session:
        inactive = await session.get(User, (org, people["rep5"].id))
        assert inactive is not None
        inactive.is_active = False
        await service.set_away(session, org_id=org, actor=admin, user_id=people["rep6"].id, away=True)
    await _admin_settings(db, org, admin, strategy="round_robin")

    numbers = iter(range(1000))

    async def worker() -> None:
        for n in numbers:
            await _create(db, org, n)

    await asyncio.gather(*(worker() for _ in range(20)))
    owners = await _owners(db, org)
    eligible = {people[f"rep{i}"].id for i in range(5)}
    assert set(owners) == eligible
    assert all(199 <= owners[u] <= 201 for u in eligible), owners
    assert sum(owners.values()) == 1000
    async with db.uow(org) as session:
        history = (
            await session.execute(select(LeadAssignment).where(LeadAssignment.status == "completed"))
        ).scalars()
        assert len(list(history)) == 1000


async def test_least_busy_evens_out_a_skewed_start_and_respects_capacity(db: Database) -> None:
    org = await new_org(db)
    people = await _people(db, org, {"ann": "rep", "bob": "rep", "cy": "rep", "boss": "admin"})
    ann, bob, cy = people["ann"].id, people["bob"].id, people["cy"].id
    for n in range(6):
        await _create(db, org, 1000 + n, owner=ann)
    for n in range(2):
        await _create(db, org, 2000 + n, owner=bob)
    await _admin_settings(db, org, people["boss"], strategy="least_busy")
    await asyncio.gather(*(_create(db, org, n) for n in range(10)))
    owners = await _owners(db, org)
    assert owners == Counter({ann: 6, bob: 6, cy: 6})

    async with db.uow(org) as session:
        await service.set_user_capacity(session, org_id=org, actor=people["boss"], user_id=cy, capacity=6)
    for n in range(2):
        await _create(db, org, 3000 + n)
    owners = await _owners(db, org)
    assert owners[cy] == 6
    assert owners[ann] == 7
    assert owners[bob] == 7


async def test_nobody_eligible_leaves_the_lead_unassigned_and_claims_one_notice(db: Database) -> None:
    org = await new_org(db)
    people = await _people(db, org, {"ann": "rep", "boss": "admin"})
    await _admin_settings(db, org, people["boss"], strategy="round_robin", capacity=1)
    await _create(db, org, 1)
    await _create(db, org, 2)
    await _create(db, org, 3)
    owners = await _owners(db, org)
    assert owners == Counter({people["ann"].id: 1, None: 2})
    async with db.uow(org) as session:
        assert await service.claim_nobody_eligible_notice(session, org_id=org) is not None
    async with db.uow(org) as session:
        assert await service.claim_nobody_eligible_notice(session, org_id=org) is None
    await _create(db, org, 4)
    async with db.uow(org) as session:
        assert await service.claim_nobody_eligible_notice(session, org_id=org) is None  # told once


async def test_strategy_none_assigns_nobody(db: Database) -> None:
    org = await new_org(db)
    await _people(db, org, {"ann": "rep"})
    await _create(db, org, 1)
    assert await _owners(db, org) == Counter({None: 1})


async def test_only_admins_change_settings_and_each_change_is_logged(db: Database) -> None:
    org = await new_org(db)
    people = await _people(db, org, {"mia": "manager", "boss": "admin", "ann": "rep"})
    async with db.uow(org) as session:
        with pytest.raises(PermissionDenied):
            await service.set_strategy(session, org_id=org, actor=people["mia"], strategy="round_robin")
    async with db.uow(org) as session:
        with pytest.raises(InvalidInput):
            await service.set_strategy(session, org_id=org, actor=people["boss"], strategy="random")
    async with db.uow(org) as session:
        await service.set_strategy(session, org_id=org, actor=people["boss"], strategy="least_busy")
        await service.set_approvals_channel(session, org_id=org, actor=people["boss"], channel_id="C0APPROVE")
        await service.set_expiry(session, org_id=org, actor=people["boss"], hours=48)
        await service.set_away(session, org_id=org, actor=people["boss"], user_id=people["ann"].id, away=True)
        settings = await service.load_settings(session, org_id=org)
    assert (settings.strategy, settings.approvals_channel, settings.expiry_hours) == (
        "least_busy",
        "C0APPROVE",
        48,
    )
    async with db.uow(org) as session:
        logged = (
            await session.execute(
                select(ActivityLog.activity_type).where(ActivityLog.activity_type.like("settings.%"))
            )
        ).scalars()
        assert sorted(logged) == [
            "settings.approvals_channel",
            "settings.assignment_expiry",
            "settings.assignment_strategy",
            "settings.user_away",
        ]


async def test_request_decide_once_under_concurrency_and_history(db: Database) -> None:
    org = await new_org(db)
    people = await _people(db, org, {"ann": "rep", "bob": "rep", "mia": "manager", "max": "manager"})
    lead_id = await _create(db, org, 1, owner=people["ann"].id)
    async with db.uow(org) as session:
        outcome = await service.request(
            session,
            org_id=org,
            lead_id=lead_id,
            to_user_id=people["bob"].id,
            actor=people["ann"],
            reason="vacation",
        )
        assert isinstance(outcome, service.Requested)
        request_id = outcome.assignment.id
    async with db.uow(org) as session:
        with pytest.raises(service.DuplicatePending) as dup:
            await service.request(
                session,
                org_id=org,
                lead_id=lead_id,
                to_user_id=people["bob"].id,
                actor=people["bob"],
                reason=None,
            )
        assert dup.value.existing_id == request_id

    async def click(who: str, approve: bool) -> str:
        try:
            async with db.uow(org) as session:
                await service.decide(
                    session, org_id=org, assignment_id=request_id, actor=people[who], approve=approve
                )
            return "won"
        except service.AlreadyDecided:
            return "lost"

    results = await asyncio.gather(*(click("mia" if i % 2 else "max", i % 3 != 0) for i in range(20)))
    assert results.count("won") == 1
    async with db.uow(org) as session:
        row = await service.get(session, org_id=org, assignment_id=request_id)
        assert row.status in ("approved", "rejected")
        assert row.decided_by in (people["mia"].id, people["max"].id)
        assert row.requested_by == people["ann"].id
        assert row.reason == "vacation"
        lead = await session.get(Lead, (org, lead_id))
        assert lead is not None
        expected = people["bob"].id if row.status == "approved" else people["ann"].id
        assert lead.assigned_to_id == expected
        card = await build_card(session, org_id=org, lead_id=lead_id)
        assert card.assignments[0].status == row.status
    async with db.uow(org) as session:
        with pytest.raises(PermissionDenied):
            await service.decide(
                session, org_id=org, assignment_id=request_id, actor=people["bob"], approve=True
            )


async def test_manager_reassigns_at_once_superseding_a_pending_request(db: Database) -> None:
    org = await new_org(db)
    people = await _people(db, org, {"ann": "rep", "bob": "rep", "mia": "manager"})
    lead_id = await _create(db, org, 1, owner=people["ann"].id)
    async with db.uow(org) as session:
        await service.request(
            session,
            org_id=org,
            lead_id=lead_id,
            to_user_id=people["bob"].id,
            actor=people["ann"],
            reason=None,
        )
    async with db.uow(org) as session:
        done = await service.request(
            session,
            org_id=org,
            lead_id=lead_id,
            to_user_id=people["mia"].id,
            actor=people["mia"],
            reason="key account",
        )
        assert isinstance(done, service.Reassigned)
        assert done.previous_owner_id == people["ann"].id
        assert done.superseded is not None
        assert done.superseded.status == "cancelled"
        assert done.lead.assigned_to_id == people["mia"].id
    async with db.uow(org) as session:
        with pytest.raises(InvalidInput, match="already owns"):
            await service.request(
                session,
                org_id=org,
                lead_id=lead_id,
                to_user_id=people["mia"].id,
                actor=people["mia"],
                reason=None,
            )


async def test_cancel_by_requester_only_and_expiry(db: Database) -> None:
    org = await new_org(db)
    people = await _people(db, org, {"ann": "rep", "bob": "rep", "mia": "manager"})
    lead_id = await _create(db, org, 1, owner=people["ann"].id)
    other_id = await _create(db, org, 2, owner=people["ann"].id)
    async with db.uow(org) as session:
        first = await service.request(
            session,
            org_id=org,
            lead_id=lead_id,
            to_user_id=people["bob"].id,
            actor=people["ann"],
            reason=None,
        )
        second = await service.request(
            session,
            org_id=org,
            lead_id=other_id,
            to_user_id=people["bob"].id,
            actor=people["ann"],
            reason=None,
        )
    async with db.uow(org) as session:
        with pytest.raises(PermissionDenied):
            await service.cancel(session, org_id=org, assignment_id=first.assignment.id, actor=people["bob"])
    async with db.uow(org) as session:
        row, _ = await service.cancel(
            session, org_id=org, assignment_id=first.assignment.id, actor=people["ann"]
        )
        assert row.status == "cancelled"
    async with db.uow(org) as session:
        with pytest.raises(service.AlreadyDecided):
            await service.cancel(session, org_id=org, assignment_id=first.assignment.id, actor=people["ann"])

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    async with db.uow(org) as session:
        with pytest.raises(service.AlreadyDecided, match="expired"):
            await service.decide(
                session,
                org_id=org,
                assignment_id=second.assignment.id,
                actor=people["mia"],
                approve=True,
                now=later,
            )
    async with db.uow(org) as session:
        assert await service.expire_due(session, org_id=org) == []
        expired = await service.expire_due(session, org_id=org, now=later)
        assert [r.id for r in expired] == [second.assignment.id]
        assert expired[0].status == "expired"
    async with db.uow(org) as session:
        assert await service.expire_due(session, org_id=org, now=later) == []
        lead = await session.get(Lead, (org, other_id))
        assert lead is not None
        assert lead.assigned_to_id == people["ann"].id
