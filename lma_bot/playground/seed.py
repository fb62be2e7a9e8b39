"""The playground's data, through the services: each workspace's organization and people (always), and with
``--demo`` a believable sales team: scoring rules, 50 leads across statuses, notes with mentions, a pending
reassignment and a reminder due a minute after start. Safe to run again on the same data: what exists is
kept (only a fresh reminder is added)."""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass, field

from sqlalchemy import func, select

from lma_bot.assignments import service as assignments
from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import STATUS_TRANSITIONS, change_status, create_lead
from lma_bot.models import Lead, LeadAssignment, User
from lma_bot.notes.service import add_note
from lma_bot.orgs.schemas import OrganizationCreate
from lma_bot.orgs.service import create_organization
from lma_bot.playground.directory import WORKSPACES, Workspace
from lma_bot.reminders.service import create_reminder
from lma_bot.scoring.service import RuleInput, create_rule
from lma_bot.users.schemas import UserCreate
from lma_bot.users.service import add_user, get_by_slack_id

log = logging.getLogger(__name__)

DEMO_LEADS = 50
FIRST = ("Ann", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gil", "Hana", "Ivo", "Jun", "Kai", "Lea", "Max", "Nia")
LAST = ("Lee", "Park", "Okafor", "Silva", "Novak", "Haas", "Ito", "Moreau", "Berg", "Costa", "Reyes")
COMPANIES = ("Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Soylent", "Tyrell", "Cyberdyne")
SOURCES = ("website", "referral", "event", "linkedin", "webinar")
TITLES = ("VP Sales", "Head of Ops", "CTO", "Buyer", "Founder", "Marketing Lead")
# Each lead's status and the path that reaches it from ``new``.
PATHS = {
    "new": (),
    "contacted": ("contacted",),
    "qualified": ("contacted", "qualified"),
    "proposal": ("contacted", "qualified", "proposal"),
    "negotiation": ("contacted", "qualified", "proposal", "negotiation"),
    "won": ("contacted", "qualified", "proposal", "won"),
    "lost": ("contacted", "lost"),
    "unqualified": ("unqualified",),
}
assert set(PATHS) == set(STATUS_TRANSITIONS)
RULES = (
    RuleInput(
        name="Senior title",
        description="VPs, heads and founders decide",
        rule_type="demographic",
        criteria={
            "any": [{"field": "job_title", "op": "contains", "value": v} for v in ("vp", "head", "founder")]
        },
        points=15,
    ),
    RuleInput(
        name="Referral",
        rule_type="demographic",
        criteria={"field": "source", "op": "eq", "value": "referral"},
        points=20,
    ),
    RuleInput(
        name="Qualified",
        rule_type="behavioral",
        criteria={"field": "status", "op": "eq", "value": "qualified"},
        points=10,
    ),
    RuleInput(
        name="Team notes",
        rule_type="engagement",
        criteria={"event": "note_added"},
        points=5,
        repeat_policy="at_most",
        repeat_limit=3,
    ),
)


@dataclass
class Seeded:
    """What exists after seeding: organization per workspace, and the demo's pending request and reminder."""

    orgs: dict[str, int] = field(default_factory=dict)  # team id -> organization id
    pending_assignment_id: int | None = None
    reminder: tuple[int, int, dt.datetime] | None = None  # (org id, reminder id, due at)
    leads: int = 0


async def ensure_workspaces(database: Database) -> dict[str, int]:
    """Each playground workspace's organization and people (created once)."""
    orgs: dict[str, int] = {}
    for space in WORKSPACES:
        org_id = await database.resolve_slack_team(space.team_id)
        if org_id is None:
            org_id = await database.next_organization_id()
            async with database.uow(org_id) as session:
                await create_organization(
                    session,
                    org_id=org_id,
                    data=OrganizationCreate(name=space.name, slack_team_id=space.team_id),
                )
            log.info("playground.org.created org_id=%s team=%s", org_id, space.team_id)
        async with database.uow(org_id) as session:
            for person in space.people:
                if await get_by_slack_id(session, org_id=org_id, slack_user_id=person.slack_id) is None:
                    data = UserCreate(
                        email=person.email,
                        name=person.real_name,
                        role=person.role,
                        slack_user_id=person.slack_id,
                        timezone=person.timezone,
                    )
                    await add_user(session, org_id=org_id, data=data)
        orgs[space.team_id] = org_id
    return orgs


async def _people(database: Database, org_id: int, space: Workspace) -> dict[str, User]:
    async with database.uow(org_id) as session:
        found = {}
        for person in space.people:
            user = await get_by_slack_id(session, org_id=org_id, slack_user_id=person.slack_id)
            assert user is not None
            found[person.handle] = user
        return found


async def seed_demo(database: Database, orgs: dict[str, int], *, now: dt.datetime | None = None) -> Seeded:
    now = now or dt.datetime.now(dt.UTC)
    seeded = Seeded(orgs=dict(orgs))
    rng = random.Random(9)  # the same demo every time
    for index, space in enumerate(WORKSPACES):
        org_id = orgs[space.team_id]
        people = await _people(database, org_id, space)
        async with database.uow(org_id) as session:
            count = (await session.execute(select(func.count()).select_from(Lead))).scalar_one()
        if count:
            seeded.leads += int(count)
            continue
        admin = next(u for u in people.values() if u.role == "admin")
        reps = [u for u in people.values() if u.role == "rep"]
        async with database.uow(org_id) as session:
            await assignments.set_approvals_channel(
                session, org_id=org_id, actor=admin, channel_id=space.approvals.id
            )
            if index == 0:
                for rule in RULES:
                    await create_rule(session, org_id=org_id, data=rule, actor=admin)
        total = DEMO_LEADS if index == 0 else 6
        statuses = list(PATHS)
        lead_ids: list[int] = []
        for n in range(total):
            first, last = FIRST[n % len(FIRST)], LAST[(n * 7) % len(LAST)]
            company = COMPANIES[(n + index * 3) % len(COMPANIES)] + (" Ltd" if index else "")
            owner = reps[n % len(reps)]
            data = LeadCreate(
                email=f"{first}.{last}{n}@{company.split()[0].lower()}.test".lower(),
                first_name=first,
                last_name=last,
                company=company,
                job_title=rng.choice(TITLES),
                source=rng.choice(SOURCES),
                tags=rng.sample(["inbound", "q4", "enterprise", "smb", "trial"], k=2),
                assigned_to_id=owner.id,
            )
            async with database.uow(org_id) as session:
                lead = await create_lead(session, org_id=org_id, data=data, actor_id=owner.id)
                for status in PATHS[statuses[n % len(statuses)]]:
                    await change_status(
                        session, org_id=org_id, lead_id=lead.id, status=status, actor_id=owner.id
                    )
                lead_ids.append(lead.id)
        seeded.leads += total
        manager = next((u for u in people.values() if u.role == "manager"), admin)
        async with database.uow(org_id) as session:
            for n, lead_id in enumerate(lead_ids[:8]):
                author = reps[n % len(reps)]
                mention = manager if n % 2 == 0 else reps[(n + 1) % len(reps)]
                await add_note(
                    session,
                    org_id=org_id,
                    lead_id=lead_id,
                    author_id=author.id,
                    content=f"Had a call, budget confirmed. <@{mention.slack_user_id}> can you join the demo?",
                    mentioned=[mention],
                )
        if index != 0 or len(reps) < 2:
            continue
        async with database.uow(org_id) as session:
            lead = (await session.execute(select(Lead).where(Lead.id == lead_ids[0]))).scalar_one()
            other = reps[1] if lead.assigned_to_id == reps[0].id else reps[0]
            requested = await assignments.request(
                session,
                org_id=org_id,
                lead_id=lead.id,
                to_user_id=other.id,
                actor=other,
                reason="I met them at the conference last week",
            )
            seeded.pending_assignment_id = requested.assignment.id
    first_org = orgs[WORKSPACES[0].team_id]
    people = await _people(database, first_org, WORKSPACES[0])
    rep = next(u for u in people.values() if u.role == "rep")
    async with database.uow(first_org) as session:
        mine = (
            await session.execute(
                select(Lead).where(Lead.assigned_to_id == rep.id).order_by(Lead.id).limit(1)
            )
        ).scalar_one_or_none()
        if mine is not None:
            due = now + dt.timedelta(minutes=1)
            reminder = await create_reminder(
                session,
                org_id=first_org,
                lead_id=mine.id,
                user_id=rep.id,
                created_by=rep.id,
                due_at=due,
                message="Follow up on the proposal (demo reminder)",
            )
            seeded.reminder = (first_org, reminder.id, due)
    if seeded.pending_assignment_id is None:
        async with database.uow(first_org) as session:
            pending = (
                await session.execute(
                    select(LeadAssignment.id).where(LeadAssignment.status == "pending").limit(1)
                )
            ).scalar_one_or_none()
        seeded.pending_assignment_id = None if pending is None else int(pending)
    return seeded
