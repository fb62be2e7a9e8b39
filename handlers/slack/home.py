"""The App Home tab: built from PostgreSQL and published on ``app_home_opened`` and after changes that touch
what it shows (assignments, decisions). A failed publish is logged: the next open rebuilds it."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.blocks.home import HomeReminder, home_view
from lma_bot.assignments import service as assignments
from lma_bot.db import Database
from lma_bot.leads.service import open_leads
from lma_bot.models import User
from lma_bot.reminders.service import upcoming_for_user

log = logging.getLogger(__name__)

HOME_REMINDERS = 10
HOME_APPROVALS = 10


def _end_of_today(now: dt.datetime, timezone: str) -> dt.datetime:
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    tomorrow = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0, 0), tzinfo=zone)
    return tomorrow.astimezone(dt.UTC)


async def build_home(
    database: Database, *, org_id: int, user_id: int, now: dt.datetime | None = None
) -> tuple[str | None, dict[str, object]] | None:
    """(Slack user id, view) of a user's App Home; None for an unknown or inactive user."""
    now = now or dt.datetime.now(dt.UTC)
    async with database.uow(org_id) as session:
        user = await session.get(User, (org_id, user_id))
        if user is None or not user.is_active:
            return None
        leads = await open_leads(session, org_id=org_id, user_id=user_id)
        until = _end_of_today(now, user.timezone)
        reminders = [
            HomeReminder(
                reminder_id=r.id,
                lead_id=lead.id,
                lead_name=lead.display_name,
                message=r.message,
                due_at=r.due_at,
            )
            for r, lead in await upcoming_for_user(session, org_id=org_id, user_id=user_id)
            if r.user_id == user_id and r.due_at < until
        ][:HOME_REMINDERS]
        approvals = (
            await assignments.pending_views(session, org_id=org_id, limit=HOME_APPROVALS)
            if user.role in assignments.MANAGER_ROLES
            else None
        )
        view = home_view(name=user.name, leads=leads, reminders=reminders, approvals=approvals)
        return user.slack_user_id, view


async def publish_home(database: Database, client: AsyncWebClient, *, org_id: int, user_id: int) -> bool:
    built = await build_home(database, org_id=org_id, user_id=user_id)
    if built is None:
        return False
    slack_user_id, view = built
    if slack_user_id is None:
        return False
    try:
        await client.views_publish(user_id=slack_user_id, view=view)
    except SlackApiError as exc:
        log.warning("slack.home.publish_failed user=%s error=%s", slack_user_id, exc.response.get("error"))
        return False
    return True


async def refresh_homes(
    database: Database, client: AsyncWebClient, *, org_id: int, user_ids: Iterable[int | None], managers: bool
) -> None:
    """Republish the App Home of ``user_ids`` (and of every manager when ``managers``: pending approvals
    changed). Only users who have a Slack id are published to."""
    ids = {u for u in user_ids if u is not None}
    if managers:
        async with database.uow(org_id) as session:
            ids |= {p.id for p in await assignments.managers(session, org_id=org_id) if p.slack_user_id}
    for user_id in sorted(ids):
        await publish_home(database, client, org_id=org_id, user_id=user_id)
