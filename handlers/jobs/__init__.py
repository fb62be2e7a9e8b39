"""Scheduler jobs. Each job is a thin adapter: claim due work, call a service in a ``uow``, push after
commit. Later slices append to ``JOBS``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lma_bot.config import Settings
from lma_bot.db import Database
from lma_bot.redis import RedisClient, RedisKeys


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    database: Database
    redis: RedisClient
    keys: RedisKeys


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[JobContext], Awaitable[None]]


JOBS: list[Job] = []
