"""Scheduler job: score decay. Hourly, every organization, one set-based statement each (idempotent, so
several scheduler processes may run it); changed scores are published after each commit."""

from __future__ import annotations

import datetime as dt
import logging

from handlers.jobs import JobContext
from lma_bot.scoring.decay import apply_decay
from lma_bot.scoring.publish import ScorePublisher

log = logging.getLogger(__name__)


def publisher_for(ctx: JobContext) -> ScorePublisher:
    publisher = ctx.state.get("scoring.publisher")
    if not isinstance(publisher, ScorePublisher):
        publisher = ScorePublisher(ctx.redis, ctx.keys)
        ctx.state["scoring.publisher"] = publisher
    return publisher


async def decay(ctx: JobContext, now: dt.datetime | None = None) -> int:
    """Apply decay in every organization; returns how many leads lost points."""
    publisher = publisher_for(ctx)
    when = now or dt.datetime.now(dt.UTC)
    changed = 0
    for org_id in await ctx.database.organization_ids():
        try:
            async with ctx.database.uow(org_id) as session:
                changes = await apply_decay(session, org_id=org_id, now=when)
        except Exception:
            log.exception("scoring.decay_failed org=%s", org_id)
            continue
        await publisher.publish(changes)
        changed += len(changes)
    return changed
