"""Assignment verbs: reassign or request, decide, cancel, expire; automatic assignment of new leads; the
organization's assignment settings. Services never commit: the caller owns the unit of work.

Lock order, everywhere: the lead row first, then its assignment rows. A decision is one conditional
``UPDATE ... WHERE status = 'pending' RETURNING``: of any number of concurrent clicks exactly one gets the
row; the others (and any replay later) find it decided and are told by whom.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.assignments import repository
from lma_bot.assignments.schemas import (
    DEFAULT_EXPIRY_HOURS,
    AssignmentSettings,
    MemberSettings,
    Person,
    RequestView,
    SettingsOverview,
    Strategy,
)
from lma_bot.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from lma_bot.jsonschemas import validate_document
from lma_bot.leads.schemas import AssignmentLine
from lma_bot.models import AssignmentRotation, Lead, LeadAssignment, Organization, User
from lma_bot.workflows import service as workflows

ROTATION_SCOPE = "leads"
MANAGER_ROLES = ("manager", "admin")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DuplicatePending(Conflict):
    """A request for this lead is already waiting; ``existing_id`` points at it."""

    def __init__(self, existing: LeadAssignment) -> None:
        # Plain values: the session (and its objects) is gone by the time the caller reads them.
        self.existing_id = existing.id
        self.lead_id = existing.lead_id
        super().__init__(
            f"lead {existing.lead_id} already has a pending reassignment request (#{existing.id}); "
            "wait for its decision, or its requester can cancel it"
        )


class AlreadyDecided(Conflict):
    """The request is no longer pending (decided, cancelled or expired)."""

    def __init__(
        self, assignment: LeadAssignment, decided_by: User | None, status: str | None = None
    ) -> None:
        self.assignment_id = assignment.id
        self.lead_id = assignment.lead_id
        self.status = status or assignment.status
        self.decided_by = (
            Person(id=decided_by.id, name=decided_by.name, slack_user_id=decided_by.slack_user_id)
            if decided_by is not None
            else None
        )
        who = f" by {decided_by.name}" if decided_by is not None else ""
        super().__init__(f"request #{self.assignment_id} was already {self.status}{who}")


# --- settings -------------------------------------------------------------------------------------------


def settings_of(org: Organization) -> AssignmentSettings:
    raw = org.settings or {}
    assignment = raw.get("assignment") or {}
    return AssignmentSettings(
        strategy=Strategy(assignment.get("strategy") or Strategy.NONE),
        capacity=assignment.get("capacity"),
        expiry_hours=int(assignment.get("request_expiry_hours") or DEFAULT_EXPIRY_HOURS),
        approvals_channel=raw.get("approvals_channel"),
    )


async def _organization(session: AsyncSession, org_id: int, *, lock: bool = False) -> Organization:
    stmt = select(Organization).where(Organization.id == org_id)
    if lock:
        stmt = stmt.with_for_update(key_share=True)  # FOR NO KEY UPDATE: tenant inserts' FK checks go on
    org = (await session.execute(stmt)).scalar_one_or_none()
    if org is None:
        raise NotFound(f"organization {org_id} not found")
    return org


async def load_settings(session: AsyncSession, *, org_id: int) -> AssignmentSettings:
    return settings_of(await _organization(session, org_id))


def _require_admin(actor: User) -> None:
    if actor.role != "admin":
        raise PermissionDenied("`/lead admin` is for admins of this workspace's organization")


async def _change_org_settings(
    session: AsyncSession, *, org_id: int, actor: User, what: str, change: dict[str, Any]
) -> AssignmentSettings:
    """Merge ``change`` (top-level keys, ``assignment`` merged one level down) into the settings; logged."""
    _require_admin(actor)
    org = await _organization(session, org_id, lock=True)
    before = dict(org.settings or {})
    after = dict(before)
    for key, value in change.items():
        if key == "assignment":
            merged = {**(before.get("assignment") or {}), **value}
            after["assignment"] = {k: v for k, v in merged.items() if v is not None or k == "capacity"}
        else:
            after[key] = value
    validate_document("organizations.settings", after)
    org.settings = after
    await session.flush()
    await record(
        session,
        org_id=org_id,
        actor_id=actor.id,
        activity_type=f"settings.{what}",
        entity_type="organization",
        entity_id=org_id,
        before={k: before.get(k) for k in change},
        after={k: after.get(k) for k in change},
    )
    return settings_of(org)


async def set_approvals_channel(
    session: AsyncSession, *, org_id: int, actor: User, channel_id: str | None
) -> AssignmentSettings:
    return await _change_org_settings(
        session,
        org_id=org_id,
        actor=actor,
        what="approvals_channel",
        change={"approvals_channel": channel_id},
    )


async def set_strategy(
    session: AsyncSession, *, org_id: int, actor: User, strategy: str
) -> AssignmentSettings:
    try:
        chosen = Strategy(strategy)
    except ValueError:
        raise InvalidInput(
            f"unknown strategy {strategy!r}; choose {', '.join(s.value for s in Strategy)}", field="strategy"
        ) from None
    return await _change_org_settings(
        session,
        org_id=org_id,
        actor=actor,
        what="assignment_strategy",
        change={"assignment": {"strategy": chosen}},
    )


async def set_expiry(session: AsyncSession, *, org_id: int, actor: User, hours: int) -> AssignmentSettings:
    if not 1 <= hours <= 720:
        raise InvalidInput("the expiry is between 1 and 720 hours", field="hours")
    return await _change_org_settings(
        session,
        org_id=org_id,
        actor=actor,
        what="assignment_expiry",
        change={"assignment": {"request_expiry_hours": hours}},
    )


async def set_org_capacity(
    session: AsyncSession, *, org_id: int, actor: User, capacity: int | None
) -> AssignmentSettings:
    if capacity is not None and capacity < 1:
        raise InvalidInput("a capacity is at least 1 open lead (or `off`)", field="capacity")
    return await _change_org_settings(
        session,
        org_id=org_id,
        actor=actor,
        what="assignment_capacity",
        change={"assignment": {"capacity": capacity}},
    )


async def _change_preference(
    session: AsyncSession, *, org_id: int, actor: User, user_id: int, key: str, value: Any
) -> User:
    _require_admin(actor)
    user = (
        await session.execute(
            select(User).where(User.organization_id == org_id, User.id == user_id).with_for_update()
        )
    ).scalar_one_or_none()
    if user is None:
        raise NotFound(f"user {user_id} not found")
    before = dict(user.preferences or {})
    after = dict(before)
    if value is None:
        after.pop(key, None)
    else:
        after[key] = value
    validate_document("users.preferences", after)
    user.preferences = after
    await session.flush()
    await record(
        session,
        org_id=org_id,
        actor_id=actor.id,
        activity_type=f"settings.user_{key}",
        entity_type="user",
        entity_id=user.id,
        before={key: before.get(key)},
        after={key: after.get(key)},
    )
    return user


async def set_user_capacity(
    session: AsyncSession, *, org_id: int, actor: User, user_id: int, capacity: int | None
) -> User:
    if capacity is not None and capacity < 1:
        raise InvalidInput("a capacity is at least 1 open lead (or `off`)", field="capacity")
    return await _change_preference(
        session, org_id=org_id, actor=actor, user_id=user_id, key="capacity", value=capacity
    )


async def set_away(session: AsyncSession, *, org_id: int, actor: User, user_id: int, away: bool) -> User:
    return await _change_preference(
        session, org_id=org_id, actor=actor, user_id=user_id, key="away", value=True if away else None
    )


async def overview(session: AsyncSession, *, org_id: int) -> SettingsOverview:
    settings = await load_settings(session, org_id=org_id)
    users = list((await session.execute(repository.members(org_id))).scalars())
    counts = await _open_counts(session, org_id, [u.id for u in users])
    return SettingsOverview(
        settings=settings,
        members=[
            MemberSettings(
                id=u.id,
                name=u.name,
                slack_user_id=u.slack_user_id,
                role=u.role,
                is_active=u.is_active,
                away=bool((u.preferences or {}).get("away")),
                capacity=(u.preferences or {}).get("capacity"),
                open_leads=counts.get(u.id, 0),
            )
            for u in users
        ],
    )


# --- reassignment ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reassigned:
    """A manager's reassignment, done at once."""

    assignment: LeadAssignment
    lead: Lead
    previous_owner_id: int | None
    superseded: LeadAssignment | None  # a pending request this replaced (now cancelled)


@dataclass(frozen=True)
class Requested:
    """A rep's request, waiting for a manager."""

    assignment: LeadAssignment
    lead: Lead


@dataclass(frozen=True)
class Decided:
    assignment: LeadAssignment
    lead: Lead
    previous_owner_id: int | None
    changed: bool  # the owner changed (approved, and not already the owner)


async def _lock_lead(session: AsyncSession, org_id: int, lead_id: int) -> Lead:
    lead = (await session.execute(repository.lead_for_update(org_id, lead_id))).scalar_one_or_none()
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    return lead


async def _active_user(session: AsyncSession, org_id: int, user_id: int) -> User:
    user = (await session.execute(repository.users(org_id, {user_id}))).scalar_one_or_none()
    if user is None:
        raise NotFound(f"user {user_id} not found")
    if not user.is_active:
        raise InvalidInput(f"{user.name} is deactivated and can't own leads", field="user")
    return user


async def _set_owner(
    session: AsyncSession, *, org_id: int, lead: Lead, to_user_id: int, actor_id: int | None, why: str
) -> int | None:
    previous = lead.assigned_to_id
    lead.assigned_to_id = to_user_id
    await session.flush()
    await record(
        session,
        org_id=org_id,
        actor_id=actor_id,
        lead_id=lead.id,
        activity_type="lead.assigned",
        entity_type="lead",
        entity_id=lead.id,
        description=why,
        before={"assigned_to_id": previous},
        after={"assigned_to_id": to_user_id},
    )
    await workflows.lead_assigned(
        session, org_id=org_id, lead=lead, previous_owner_id=previous, actor_id=actor_id
    )
    return previous


async def request(
    session: AsyncSession,
    *,
    org_id: int,
    lead_id: int,
    to_user_id: int,
    actor: User,
    reason: str | None,
    now: dt.datetime | None = None,
) -> Reassigned | Requested:
    """A manager or admin reassigns ``lead_id`` to ``to_user_id`` at once (superseding a pending request);
    a rep's ask becomes a ``pending`` request (:class:`DuplicatePending` if one is already waiting)."""
    now = now or _now()
    reason = (reason or "").strip()[:500] or None
    lead = await _lock_lead(session, org_id, lead_id)
    target = await _active_user(session, org_id, to_user_id)
    if lead.assigned_to_id == target.id:
        raise InvalidInput(f"{target.name} already owns lead {lead.id}", field="user")
    if actor.role in MANAGER_ROLES:
        superseded = (
            await session.execute(
                update(LeadAssignment)
                .where(
                    LeadAssignment.organization_id == org_id,
                    LeadAssignment.lead_id == lead.id,
                    LeadAssignment.status == "pending",
                )
                .values(
                    status="cancelled",
                    decided_by=actor.id,
                    decided_at=now,
                    decision_note="superseded by a direct reassignment",
                )
                .returning(LeadAssignment)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
        previous = lead.assigned_to_id
        row = LeadAssignment(
            organization_id=org_id,
            lead_id=lead.id,
            assigned_from=previous,
            assigned_to=target.id,
            assigned_by=actor.id,
            requested_by=actor.id,
            decided_by=actor.id,
            decided_at=now,
            reason=reason,
            status="completed",
        )
        session.add(row)
        await session.flush()
        await _set_owner(
            session,
            org_id=org_id,
            lead=lead,
            to_user_id=target.id,
            actor_id=actor.id,
            why=reason or "reassigned",
        )
        return Reassigned(assignment=row, lead=lead, previous_owner_id=previous, superseded=superseded)

    settings = await load_settings(session, org_id=org_id)
    stmt = (
        pg_insert(LeadAssignment)
        .values(
            organization_id=org_id,
            lead_id=lead.id,
            assigned_from=lead.assigned_to_id,
            assigned_to=target.id,
            requested_by=actor.id,
            reason=reason,
            status="pending",
            expires_at=now + dt.timedelta(hours=settings.expiry_hours),
        )
        .on_conflict_do_nothing(
            index_elements=[LeadAssignment.organization_id, LeadAssignment.lead_id],
            index_where=LeadAssignment.status == "pending",
        )
        .returning(LeadAssignment)
    )
    created = (await session.scalars(stmt)).one_or_none()
    if created is None:
        existing = (await session.execute(repository.pending_for_lead(org_id, lead.id))).scalar_one()
        raise DuplicatePending(existing)
    await record(
        session,
        org_id=org_id,
        actor_id=actor.id,
        lead_id=lead.id,
        activity_type="assignment.requested",
        entity_type="assignment",
        entity_id=created.id,
        description=reason,
        after={"assigned_to": target.id, "assigned_from": lead.assigned_to_id},
    )
    return Requested(assignment=created, lead=lead)


async def set_approval_messages(
    session: AsyncSession, *, org_id: int, assignment_id: int, messages: Sequence[dict[str, str]]
) -> None:
    await session.execute(
        update(LeadAssignment)
        .where(LeadAssignment.organization_id == org_id, LeadAssignment.id == assignment_id)
        .values(approval_messages=list(messages))
        .execution_options(synchronize_session=False)
    )


async def get(session: AsyncSession, *, org_id: int, assignment_id: int) -> LeadAssignment:
    row = (await session.execute(repository.assignment(org_id, assignment_id))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"reassignment request {assignment_id} not found")
    return row


async def _refuse_settled(session: AsyncSession, org_id: int, assignment_id: int, now: dt.datetime) -> None:
    row = await get(session, org_id=org_id, assignment_id=assignment_id)
    await session.refresh(row)
    if row.status == "pending" and row.expires_at is not None and row.expires_at <= now:
        raise AlreadyDecided(row, None, status="expired")  # the expiry job records it
    decider = None
    if row.decided_by is not None:
        decider = (await session.execute(repository.users(org_id, {row.decided_by}))).scalar_one_or_none()
    raise AlreadyDecided(row, decider)


async def decide(
    session: AsyncSession,
    *,
    org_id: int,
    assignment_id: int,
    actor: User,
    approve: bool,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> Decided:
    """Approve or reject a pending request, once. Only managers and admins of the organization decide."""
    if actor.role not in MANAGER_ROLES:
        raise PermissionDenied("only managers and admins decide reassignment requests")
    now = now or _now()
    first = await get(session, org_id=org_id, assignment_id=assignment_id)
    lead = await _lock_lead(session, org_id, first.lead_id)
    status = "approved" if approve else "rejected"
    row = (
        await session.execute(
            update(LeadAssignment)
            .where(
                LeadAssignment.organization_id == org_id,
                LeadAssignment.id == assignment_id,
                LeadAssignment.status == "pending",
                (LeadAssignment.expires_at.is_(None)) | (LeadAssignment.expires_at > now),
            )
            .values(
                status=status,
                decided_by=actor.id,
                decided_at=now,
                decision_note=(note or "").strip()[:500] or None,
                assigned_by=actor.id if approve else None,
                assigned_from=lead.assigned_to_id,
            )
            .returning(LeadAssignment)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    ).scalar_one_or_none()
    if row is None:
        await _refuse_settled(session, org_id, assignment_id, now)
        raise AssertionError("unreachable")
    previous = lead.assigned_to_id
    changed = False
    if approve and row.assigned_to is not None and row.assigned_to != previous:
        await _active_user(session, org_id, row.assigned_to)
        await _set_owner(
            session,
            org_id=org_id,
            lead=lead,
            to_user_id=row.assigned_to,
            actor_id=actor.id,
            why=row.reason or "approved",
        )
        changed = True
    await record(
        session,
        org_id=org_id,
        actor_id=actor.id,
        lead_id=lead.id,
        activity_type=f"assignment.{status}",
        entity_type="assignment",
        entity_id=row.id,
        description=row.decision_note,
    )
    return Decided(assignment=row, lead=lead, previous_owner_id=previous, changed=changed)


async def cancel(
    session: AsyncSession, *, org_id: int, assignment_id: int, actor: User, now: dt.datetime | None = None
) -> tuple[LeadAssignment, Lead]:
    """The requester (or a manager) withdraws a pending request."""
    now = now or _now()
    first = await get(session, org_id=org_id, assignment_id=assignment_id)
    if actor.id != first.requested_by and actor.role not in MANAGER_ROLES:
        raise PermissionDenied("only whoever asked (or a manager) can cancel a reassignment request")
    lead = await _lock_lead(session, org_id, first.lead_id)
    row = (
        await session.execute(
            update(LeadAssignment)
            .where(
                LeadAssignment.organization_id == org_id,
                LeadAssignment.id == assignment_id,
                LeadAssignment.status == "pending",
            )
            .values(
                status="cancelled",
                decided_by=actor.id,
                decided_at=now,
                decision_note="cancelled by " + actor.name,
            )
            .returning(LeadAssignment)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    ).scalar_one_or_none()
    if row is None:
        await _refuse_settled(session, org_id, assignment_id, now)
        raise AssertionError("unreachable")
    await record(
        session,
        org_id=org_id,
        actor_id=actor.id,
        lead_id=lead.id,
        activity_type="assignment.cancelled",
        entity_type="assignment",
        entity_id=row.id,
    )
    return row, lead


async def expire_due(
    session: AsyncSession, *, org_id: int, now: dt.datetime | None = None, limit: int = 200
) -> list[LeadAssignment]:
    """Mark pending requests past their time ``expired`` (each exactly once, whoever runs this)."""
    now = now or _now()
    due = (
        select(LeadAssignment.id)
        .where(
            LeadAssignment.organization_id == org_id,
            LeadAssignment.status == "pending",
            LeadAssignment.expires_at <= now,
        )
        .order_by(LeadAssignment.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = list(
        (
            await session.execute(
                update(LeadAssignment)
                .where(
                    LeadAssignment.organization_id == org_id,
                    LeadAssignment.id.in_(due),
                    LeadAssignment.status == "pending",
                )
                .values(status="expired", decided_at=now, decision_note="expired without a decision")
                .returning(LeadAssignment)
                .execution_options(synchronize_session=False, populate_existing=True)
            )
        ).scalars()
    )
    for row in rows:
        await record(
            session,
            org_id=org_id,
            lead_id=row.lead_id,
            activity_type="assignment.expired",
            entity_type="assignment",
            entity_id=row.id,
        )
    return rows


# --- views -----------------------------------------------------------------------------------------------


async def views(session: AsyncSession, *, org_id: int, rows: Sequence[LeadAssignment]) -> list[RequestView]:
    """Read views of ``rows``, with their leads and people (two queries)."""
    if not rows:
        return []
    lead_ids = {r.lead_id for r in rows}
    leads = {
        lead.id: lead
        for lead in (
            await session.execute(select(Lead).where(Lead.organization_id == org_id, Lead.id.in_(lead_ids)))
        ).scalars()
    }
    user_ids = {
        u
        for r in rows
        for u in (r.assigned_from, r.assigned_to, r.requested_by or r.assigned_by, r.decided_by)
        if u is not None
    }
    people = (
        {
            u.id: Person(id=u.id, name=u.name, slack_user_id=u.slack_user_id)
            for u in (await session.execute(repository.users(org_id, user_ids))).scalars()
        }
        if user_ids
        else {}
    )
    out = []
    for r in rows:
        lead = leads.get(r.lead_id)
        out.append(
            RequestView(
                id=r.id,
                status=r.status,
                lead_id=r.lead_id,
                lead_name=lead.display_name if lead else f"Lead {r.lead_id}",
                lead_company=lead.company if lead else None,
                lead_status=lead.status if lead else "unknown",
                lead_score=lead.score if lead else 0,
                lead_temperature=lead.lead_temperature if lead else "cold",
                from_user=people.get(r.assigned_from) if r.assigned_from else None,
                to_user=people.get(r.assigned_to) if r.assigned_to else None,
                requested_by=people.get(r.requested_by or r.assigned_by or 0),
                decided_by=people.get(r.decided_by) if r.decided_by else None,
                reason=r.reason,
                decision_note=r.decision_note,
                requested_at=r.assigned_at,
                decided_at=r.decided_at,
                expires_at=r.expires_at,
                approval_messages=list(r.approval_messages or []),
            )
        )
    return out


async def view(session: AsyncSession, *, org_id: int, assignment_id: int) -> RequestView:
    [one] = await views(
        session, org_id=org_id, rows=[await get(session, org_id=org_id, assignment_id=assignment_id)]
    )
    return one


async def pending_views(session: AsyncSession, *, org_id: int, limit: int = 10) -> list[RequestView]:
    rows = list((await session.execute(repository.pending(org_id, limit))).scalars())
    return await views(session, org_id=org_id, rows=rows)


async def recent_views(
    session: AsyncSession, *, org_id: int, lead_id: int, limit: int = 3
) -> list[RequestView]:
    rows = list((await session.execute(repository.recent_for_lead(org_id, lead_id, limit))).scalars())
    return await views(session, org_id=org_id, rows=rows)


async def card_lines(
    session: AsyncSession, *, org_id: int, lead_id: int, limit: int = 3
) -> list[AssignmentLine]:
    """The lead card's last assignments, newest first."""
    lines = []
    for a in await recent_views(session, org_id=org_id, lead_id=lead_id, limit=limit):
        by = a.decided_by or a.requested_by
        lines.append(
            AssignmentLine(
                id=a.id,
                status=a.status,
                at=a.decided_at or a.requested_at,
                from_name=a.from_user.name if a.from_user else None,
                from_slack_id=a.from_user.slack_user_id if a.from_user else None,
                to_name=a.to_user.name if a.to_user else None,
                to_slack_id=a.to_user.slack_user_id if a.to_user else None,
                by_name=by.name if by else None,
                by_slack_id=by.slack_user_id if by else None,
                reason=a.reason,
            )
        )
    return lines


async def managers(session: AsyncSession, *, org_id: int) -> list[Person]:
    return [
        Person(id=u.id, name=u.name, slack_user_id=u.slack_user_id)
        for u in (await session.execute(repository.managers(org_id))).scalars()
    ]


# --- automatic assignment --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutoAssigned:
    user_id: int | None  # None: nobody was eligible (or the strategy is none)
    strategy: Strategy
    nobody_eligible: bool = False


async def _open_counts(session: AsyncSession, org_id: int, user_ids: list[int]) -> dict[int, int]:
    if not user_ids:
        return {}
    rows = await session.execute(repository.open_counts(org_id, user_ids))
    return {int(uid): int(n) for uid, n in rows.tuples() if uid is not None}


async def _rotation(session: AsyncSession, org_id: int) -> AssignmentRotation:
    """The organization's rotation row, locked until the end of the transaction (created on first use)."""
    stmt = (
        pg_insert(AssignmentRotation)
        .values(organization_id=org_id, scope=ROTATION_SCOPE)
        .on_conflict_do_update(
            index_elements=[AssignmentRotation.organization_id, AssignmentRotation.scope],
            set_={"updated_at": func.now()},
        )
        .returning(AssignmentRotation)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).one()


def _has_room(capacity: int | None, open_leads: int) -> bool:
    return capacity is None or open_leads < capacity


def _pick(strategy: Strategy, eligible: list[User], counts: dict[int, int], last_user_id: int | None) -> User:
    """Round robin: the next eligible rep after the last one (by id, wrapping). Least busy: the fewest open
    leads, ties going to the next in rotation order."""
    after_last = [u for u in eligible if last_user_id is None or u.id > last_user_id]
    rotation = after_last + [u for u in eligible if u not in after_last]
    if strategy is Strategy.LEAST_BUSY:
        return min(rotation, key=lambda u: counts.get(u.id, 0))  # min keeps the first of equals
    return rotation[0]


async def auto_assign(
    session: AsyncSession, *, org_id: int, lead: Lead, actor_id: int | None = None
) -> AutoAssigned:
    """Give a new unowned lead an owner by the organization's strategy, in the caller's transaction.

    Skips reps who are inactive, away or at capacity (their own, else the organization's). Concurrent
    creates take turns on the organization's rotation row, so round robin stays even under load.
    When nobody is eligible the lead stays unassigned and ``nobody_eligible_since`` is set: the scheduler
    tells the managers once (:func:`claim_nobody_eligible_notice`).
    """
    settings = await load_settings(session, org_id=org_id)
    if settings.strategy is Strategy.NONE or lead.assigned_to_id is not None:
        return AutoAssigned(user_id=lead.assigned_to_id, strategy=settings.strategy)
    rotation = await _rotation(session, org_id)
    reps = [
        u
        for u in (await session.execute(repository.reps(org_id))).scalars()
        if not (u.preferences or {}).get("away")
    ]
    capacities: dict[int, int | None] = {
        u.id: (u.preferences or {}).get("capacity") or settings.capacity for u in reps
    }
    needs_counts = settings.strategy is Strategy.LEAST_BUSY or any(capacities.values())
    counts = await _open_counts(session, org_id, [u.id for u in reps]) if needs_counts else {}
    eligible = [u for u in reps if _has_room(capacities[u.id], counts.get(u.id, 0))]
    if not eligible:
        if rotation.nobody_eligible_since is None:
            rotation.nobody_eligible_since = _now()
            rotation.nobody_eligible_notified_at = None
        await session.flush()
        return AutoAssigned(user_id=None, strategy=settings.strategy, nobody_eligible=True)
    chosen = _pick(settings.strategy, eligible, counts, rotation.last_user_id)
    rotation.last_user_id = chosen.id
    rotation.assigned_count += 1
    rotation.nobody_eligible_since = None
    rotation.nobody_eligible_notified_at = None
    session.add(
        LeadAssignment(
            organization_id=org_id,
            lead_id=lead.id,
            assigned_to=chosen.id,
            reason=f"automatic ({settings.strategy.value})",
            status="completed",
            decided_at=_now(),
        )
    )
    await session.flush()
    await _set_owner(
        session,
        org_id=org_id,
        lead=lead,
        to_user_id=chosen.id,
        actor_id=actor_id,
        why=f"automatic ({settings.strategy.value})",
    )
    return AutoAssigned(user_id=chosen.id, strategy=settings.strategy)


async def claim_nobody_eligible_notice(session: AsyncSession, *, org_id: int) -> dt.datetime | None:
    """Claim the one notice of a "nobody eligible" episode; returns since when, or None (none due, or
    claimed already by another process)."""
    return (
        await session.execute(
            update(AssignmentRotation)
            .where(
                AssignmentRotation.organization_id == org_id,
                AssignmentRotation.scope == ROTATION_SCOPE,
                AssignmentRotation.nobody_eligible_since.is_not(None),
                AssignmentRotation.nobody_eligible_notified_at.is_(None),
            )
            .values(nobody_eligible_notified_at=func.now())
            .returning(AssignmentRotation.nobody_eligible_since)
        )
    ).scalar_one_or_none()


async def unassigned_count(session: AsyncSession, *, org_id: int) -> int:
    return int(
        (
            await session.execute(
                select(func.count()).where(
                    Lead.organization_id == org_id, Lead.assigned_to_id.is_(None), Lead.deleted_at.is_(None)
                )
            )
        ).scalar_one()
    )
