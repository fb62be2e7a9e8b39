"""The morning digest: once a day, in each rep's own timezone, the follow-ups they were reminded of and have
not marked Done. Sent at ``preferences.digest_time`` (default 08:30) or, if that falls in the user's quiet
hours, when they end; never twice a day however many scheduler processes run (the day is claimed in
PostgreSQL first: a crash between the claim and the DM skips that day's digest rather than doubling it).
``preferences.digest = false`` turns it off.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.models import Lead, Reminder, User
from lma_bot.reminders.quiet import digest_time, in_quiet_hours

MAX_ITEMS = 10


@dataclass(frozen=True)
class Overdue:
    reminder_id: int
    lead_id: int
    lead_name: str
    message: str | None
    due_at: dt.datetime


@dataclass(frozen=True)
class Digest:
    user_id: int
    slack_user_id: str
    items: list[Overdue]
    total: int


def _due_today(user: User, now: dt.datetime) -> str | None:
    """The user's local date if their digest is due now and not yet sent today, else None."""
    prefs = user.preferences or {}
    if prefs.get("digest") is False:
        return None
    local = now.astimezone(ZoneInfo(user.timezone))
    if local.time() < digest_time(prefs) or in_quiet_hours(now, user.timezone, prefs):
        return None
    today = local.date().isoformat()
    return None if prefs.get("digest_sent_on") == today else today


async def claim_digests(session: AsyncSession, *, org_id: int, now: dt.datetime) -> list[Digest]:
    """Digests due now in the organization, each day claimed once; users with nothing overdue are claimed
    too (nothing is sent) so they are not looked at again until tomorrow."""
    users = (
        await session.execute(
            select(User).where(
                User.organization_id == org_id, User.is_active, User.slack_user_id.is_not(None)
            )
        )
    ).scalars()
    digests = []
    for user in list(users):
        today = _due_today(user, now)
        if today is None or user.slack_user_id is None:
            continue
        claimed = await session.execute(
            update(User)
            .where(
                User.organization_id == org_id,
                User.id == user.id,
                func.coalesce(User.preferences["digest_sent_on"].astext, "") != today,
            )
            .values(preferences=User.preferences.op("||")(func.jsonb_build_object("digest_sent_on", today)))
            .returning(User.id)
            .execution_options(synchronize_session=False)
        )
        if claimed.scalar_one_or_none() is None:
            continue  # another process took it
        overdue = await _overdue(session, org_id=org_id, user_id=user.id, now=now)
        if overdue[1]:
            digests.append(Digest(user.id, user.slack_user_id, overdue[0], overdue[1]))
    return digests


async def _overdue(
    session: AsyncSession, *, org_id: int, user_id: int, now: dt.datetime
) -> tuple[list[Overdue], int]:
    where = (
        Reminder.organization_id == org_id,
        Reminder.user_id == user_id,
        Reminder.status == "sent",
        Reminder.done_at.is_(None),
        Reminder.due_at < now,
    )
    total = int(
        (await session.execute(select(func.count()).select_from(Reminder).where(*where))).scalar_one()
    )
    rows = await session.execute(
        select(Reminder, Lead)
        .join(Lead, (Lead.organization_id == Reminder.organization_id) & (Lead.id == Reminder.lead_id))
        .where(*where)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(MAX_ITEMS)
    )
    items = [Overdue(r.id, lead.id, lead.display_name, r.message, r.due_at) for r, lead in rows.tuples()]
    return items, total
