"""Web app factory: ``create_app(settings)`` owns the lifecycles (engine, Redis) via ``cleanup_ctx``.
Nothing connects at import time. ``settings.database_url`` and ``settings.redis_url`` are resolved by the
caller (see :mod:`lma_bot.entrypoints.runtime` for the embedded default)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CollectorRegistry

import handlers.ops
import handlers.slack
import handlers.webhooks
from handlers import context
from lma_bot.config import Settings
from lma_bot.db import Database, runtime_database_url
from lma_bot.redis import RedisKeys, open_redis

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    if not settings.database_url or not settings.redis_url:
        raise ValueError("create_app needs resolved database_url and redis_url")
    app = web.Application(client_max_size=1024 * 1024)
    app[context.SETTINGS] = settings
    app[context.REDIS_KEYS] = RedisKeys(settings.redis_prefix)
    app[context.METRICS] = CollectorRegistry()
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_workflows_ctx)
    app.cleanup_ctx.append(_scoring_ctx)
    handlers.ops.setup(app)
    handlers.slack.setup(app)
    handlers.webhooks.setup(app)
    return app


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[context.SETTINGS]
    assert settings.database_url is not None
    database = Database.from_url(
        runtime_database_url(settings, settings.database_url),
        pool_size=settings.db_pool_size,
        application_name="lma-bot web",
    )
    app[context.DATABASE] = database
    yield
    await database.dispose()


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[context.SETTINGS]
    assert settings.redis_url is not None
    client = await open_redis(settings.redis_url)
    app[context.REDIS] = client
    yield
    await client.aclose()


async def _workflows_ctx(app: web.Application) -> AsyncIterator[None]:
    """Workflow executions go out after the commit that wrote them; a sweeper sends what a crash left."""
    from lma_bot.crypto import SecretBox
    from lma_bot.workflows.dispatch import running

    settings = app[context.SETTINGS]
    box = SecretBox(settings.encryption_keys) if settings.encryption_keys else None
    async with running(app[context.DATABASE], box):
        yield


async def _scoring_ctx(app: web.Application) -> AsyncIterator[None]:
    """Score changes are published after their commit: ``lead_score:{id}``, the card cache, hot-lead alerts."""
    from handlers.slack.clients import BotClients
    from handlers.slack.scoring import hot_alert_sender
    from lma_bot.scoring.publish import ScorePublisher, attach

    settings, database = app[context.SETTINGS], app[context.DATABASE]
    on_hot = (
        hot_alert_sender(database, BotClients(settings, database).client_for)
        if settings.slack_signing_secret
        else None
    )
    publisher = ScorePublisher(app[context.REDIS], app[context.REDIS_KEYS], on_hot=on_hot)
    attach(database, publisher)
    app[context.SCORES] = publisher
    yield
    attach(database, None)
    await publisher.drain()
