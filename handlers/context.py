"""Typed application state shared by the web handlers; set by ``lma_bot.entrypoints.web.create_app``."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from lma_bot.config import Settings
from lma_bot.db import Database
from lma_bot.redis import AnyRedis, RedisKeys
from lma_bot.scoring.publish import ScorePublisher

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
REDIS: web.AppKey[AnyRedis] = web.AppKey("redis")
REDIS_KEYS = web.AppKey("redis_keys", RedisKeys)
METRICS = web.AppKey("metrics", CollectorRegistry)
SCORES = web.AppKey("scores", ScorePublisher)
