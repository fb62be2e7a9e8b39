"""Scheduler jobs of assignments: expire pending reassignment requests past their time (status, thread
note, requester told), and tell the managers once when new leads find nobody eligible.

Each organization's claim is one conditional UPDATE, so any number of scheduler processes do each thing
once; Slack is called after the commit.
"""

from __future__ import annotations

import logging

from handlers.jobs import JobContext, bot_clients
from handlers.slack.assignments import after_settled
from handlers.slack.blocks.assignments import nobody_eligible_dm
from handlers.slack.clients import ClientFor
from handlers.slack.notify import send_dm
from lma_bot.assignments import service
from lma_bot.db import Database

log = logging.getLogger(__name__)


async def expire_requests(database: Database, client_for: ClientFor) -> int:
    expired_total = 0
    for org_id in await database.organization_ids():
        async with database.uow(org_id) as session:
            rows = await service.expire_due(session, org_id=org_id)
            views = await service.views(session, org_id=org_id, rows=rows)
        if not views:
            continue
        expired_total += len(views)
        log.info("assignments.expired org_id=%s count=%s", org_id, len(views))
        client = await client_for(org_id)
        if client is None:
            continue
        for view in views:
            await after_settled(database, None, client, org_id=org_id, view=view)
    return expired_total


async def notify_nobody_eligible(database: Database, client_for: ClientFor) -> int:
    told = 0
    for org_id in await database.organization_ids():
        async with database.uow(org_id) as session:
            since = await service.claim_nobody_eligible_notice(session, org_id=org_id)
            if since is None:
                continue
            unassigned = await service.unassigned_count(session, org_id=org_id)
            managers = await service.managers(session, org_id=org_id)
        told += 1
        client = await client_for(org_id)
        if client is None:
            continue
        blocks = nobody_eligible_dm(unassigned=unassigned, since=since)
        for manager in managers:
            if manager.slack_user_id:
                await send_dm(
                    client, manager.slack_user_id, text="Nobody is eligible for new leads", blocks=blocks
                )
    return told


def _client_for(ctx: JobContext) -> ClientFor:
    return bot_clients(ctx).client_for


async def expire(ctx: JobContext) -> None:
    await expire_requests(ctx.database, _client_for(ctx))


async def notices(ctx: JobContext) -> None:
    await notify_nobody_eligible(ctx.database, _client_for(ctx))
