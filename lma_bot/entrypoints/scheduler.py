"""The scheduler process: an APScheduler AsyncIOScheduler running the periodic jobs in
``handlers.jobs.JOBS``, each with its own database/Redis access. Several processes may run at once; each
job is responsible for claiming its work atomically (see the scheduler issue)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError

from handlers.jobs import JOBS, Job, JobContext
from lma_bot.config import Settings
from lma_bot.db import Database, runtime_database_url
from lma_bot.redis import RedisKeys, open_redis

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


async def run_scheduler(settings: Settings, wait: Callable[[], Awaitable[None]]) -> None:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    database = Database.from_url(
        runtime_database_url(settings, settings.database_url), application_name="lma-bot scheduler"
    )
    redis = await open_redis(settings.redis_url)
    ctx = JobContext(settings=settings, database=database, redis=redis, keys=RedisKeys(settings.redis_prefix))
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
    scheduler.start()
    log.info("scheduler.started jobs=%s", ",".join(j.name for j in JOBS) or "(none)")
    try:
        await wait()
    finally:
        scheduler.shutdown(wait=False)
        await redis.aclose()
        await database.dispose()
        log.info("scheduler.stopped")
