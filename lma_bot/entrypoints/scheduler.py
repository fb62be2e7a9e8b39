"""The scheduler process: an APScheduler AsyncIOScheduler running the periodic jobs in
``handlers.jobs.JOBS`` (reminder delivery, queue reconciliation, digests), each with its own database/Redis
access, plus the n8n workflow dispatcher and its sweeper. Several processes may run at once; each
job is responsible for claiming its work atomically (see the scheduler issue)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError

from handlers.jobs import JOBS, Job, JobContext, close_jobs
from lma_bot.config import Settings
from lma_bot.crypto import SecretBox
from lma_bot.db import Database, runtime_database_url
from lma_bot.redis import RedisKeys, open_redis
from lma_bot.scoring.publish import ScorePublisher
from lma_bot.scoring.publish import attach as attach_scores
from lma_bot.workflows.dispatch import running

log = logging.getLogger(__name__)


def _guarded(job: Job) -> Callable[[JobContext], Awaitable[None]]:
    """A failing run (Redis or PostgreSQL away) is logged in one line and retried at the next interval; the
    process keeps running, and work left claimed comes back when its lease expires."""

    async def run(ctx: JobContext) -> None:
        try:
            await job.run(ctx)
        except (RedisError, OperationalError, InterfaceError, OSError, TimeoutError) as exc:
            log.warning("job.unavailable job=%s error=%s: %s", job.name, type(exc).__name__, exc)
        except Exception:
            log.exception("job.failed job=%s", job.name)

    return run


@contextlib.asynccontextmanager
async def _scores(ctx: JobContext) -> AsyncIterator[None]:
    """Score changes of this process's jobs (decay) go to Redis and raise hot-lead alerts after commit."""
    from handlers.jobs import bot_clients
    from handlers.slack.scoring import hot_alert_sender

    on_hot = (
        hot_alert_sender(ctx.database, bot_clients(ctx).client_for)
        if ctx.settings.slack_signing_secret or ctx.settings.slack_bot_token
        else None
    )
    publisher = ScorePublisher(ctx.redis, ctx.keys, on_hot=on_hot)
    attach_scores(ctx.database, publisher)
    ctx.state["scores"] = publisher
    try:
        yield
    finally:
        attach_scores(ctx.database, None)
        await publisher.drain()


async def run_scheduler(settings: Settings, wait: Callable[[], Awaitable[None]]) -> None:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    database = Database.from_url(
        runtime_database_url(settings, settings.database_url),
        application_name="lma-bot scheduler",
        pool_size=16,  # the reminder and email workers, the workflow dispatcher and the periodic jobs
    )
    redis = await open_redis(settings.redis_url)
    ctx = JobContext(settings=settings, database=database, redis=redis, keys=RedisKeys(settings.redis_prefix))
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per job run every second
    scheduler = AsyncIOScheduler(timezone="UTC")
    for job in JOBS:
        scheduler.add_job(
            _guarded(job),
            "interval",
            seconds=job.every_seconds,
            args=[ctx],
            id=job.name,
            max_instances=1,
            coalesce=True,
            next_run_time=dt.datetime.now(dt.UTC),  # once at start: reconcile before the first interval
        )
    box = SecretBox(settings.encryption_keys) if settings.encryption_keys else None
    try:
        # n8n workflow executions: what this process's jobs trigger goes out after commit, and the sweeper
        # (safe beside the web processes' own: rows are claimed with a lease) sends what a crash left
        async with running(database, box), _scores(ctx):
            scheduler.start()
            log.info("scheduler.started jobs=%s", ",".join(j.name for j in JOBS) or "(none)")
            try:
                await wait()
            finally:
                scheduler.shutdown(wait=False)
                await close_jobs(ctx)
    finally:
        await redis.aclose()
        await database.dispose()
        log.info("scheduler.stopped")
