from __future__ import annotations

from dataclasses import dataclass

from lma_bot.config import Settings
from lma_bot.db import Database
from lma_bot.leads.cache import LeadCardCache
from lma_bot.redis import RedisClient, RedisKeys


@dataclass(frozen=True)
class SlackDeps:
    """What Slack listeners need; built once per web app, after the engine and Redis exist."""

    settings: Settings
    database: Database
    redis: RedisClient
    keys: RedisKeys
    cards: LeadCardCache
