"""Scheduler jobs. Each job is a thin adapter: claim due work, call a service in a ``uow``, push after
commit. Later slices append to ``JOBS``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lma_bot.config import Settings

if TYPE_CHECKING:
    from handlers.slack.clients import BotClients
from lma_bot.db import Database
from lma_bot.redis import AnyRedis, RedisKeys


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    database: Database
    redis: AnyRedis
    keys: RedisKeys
    state: dict[str, Any] = field(default_factory=dict)  # a job's long-lived helpers (clients, caches)


def bot_clients(ctx: JobContext) -> BotClients:
    """The process's Slack bot clients (one token cache shared by every job)."""
    from handlers.slack.clients import BotClients

    found = ctx.state.get("bot_clients")
    if not isinstance(found, BotClients):
        found = BotClients(ctx.settings, ctx.database)
        ctx.state["bot_clients"] = found
    return found


async def close_jobs(ctx: JobContext) -> None:
    """Stop the jobs' long-lived helpers (workers, Slack connections) at shutdown."""
    for helper in ctx.state.values():
        close = getattr(helper, "close", None)
        if close is not None:
            await close()


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[JobContext], Awaitable[None]]


async def _dispatch_reminders(ctx: JobContext) -> None:
    from handlers.jobs.reminders import reminders_for

    await reminders_for(ctx).pump()


async def _reconcile_reminders(ctx: JobContext) -> None:
    from handlers.jobs.reminders import reminders_for

    await reminders_for(ctx).reconcile()


async def _send_digests(ctx: JobContext) -> None:
    from handlers.jobs.reminders import reminders_for

    await reminders_for(ctx).digests()


async def _send_emails(ctx: JobContext) -> None:
    from handlers.jobs.email import email_for

    await email_for(ctx).tick()


async def _reconcile_emails(ctx: JobContext) -> None:
    from handlers.jobs.email import email_for

    await email_for(ctx).reconcile()


async def _expire_assignments(ctx: JobContext) -> None:
    from handlers.jobs.assignments import expire

    await expire(ctx)


async def _assignment_notices(ctx: JobContext) -> None:
    from handlers.jobs.assignments import notices

    await notices(ctx)


async def _decay_scores(ctx: JobContext) -> None:
    from handlers.jobs.scoring import decay

    await decay(ctx)


JOBS: list[Job] = [
    Job("reminders.dispatch", 1.0, _dispatch_reminders),
    Job("reminders.reconcile", 300.0, _reconcile_reminders),
    Job("email.send", 1.0, _send_emails),
    Job("email.reconcile", 300.0, _reconcile_emails),
    Job("reminders.digest", 300.0, _send_digests),
    Job("scoring.decay", 3600.0, _decay_scores),
    Job("assignments.expire", 60.0, _expire_assignments),
    Job("assignments.notices", 60.0, _assignment_notices),
]
