from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from handlers.slack.lazy import AckGate
from lma_bot.config import Settings
from lma_bot.db import Database
from lma_bot.leads.cache import LeadCardCache
from lma_bot.redis import AnyRedis, RedisKeys
from lma_bot.scoring.publish import ScorePublisher

#: How long a Slack team's organization id is remembered (only found ones: a new workspace works at once).
TEAM_CACHE_SECONDS = 30.0
#: How long a member's user row (id, role, name, time zone, active) is remembered by this process. A
#: deactivation or role change made elsewhere (CLI, another web process) takes effect within this time;
#: one made through ``SlackDeps.forget_member`` at once.
ACTOR_CACHE_SECONDS = 5.0

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A small in-process cache whose entries expire ``ttl`` seconds after they were put."""

    def __init__(
        self, ttl: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            now = self.clock()
            for stale in [k for k, (expires, _) in self._entries.items() if expires <= now]:
                del self._entries[stale]
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[key] = (self.clock() + self.ttl, value)

    def invalidate(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class SlackDeps:
    """What Slack listeners need; built once per web app, after the engine and Redis exist."""

    settings: Settings
    database: Database
    redis: AnyRedis
    keys: RedisKeys
    cards: LeadCardCache
    #: publishes score changes (Redis, hot alerts); rescoring after a rule change hands it its changes
    scores: ScorePublisher | None = None
    #: Slack requests being answered; lazy listeners give way to them (``handlers.slack.lazy``).
    ack_gate: AckGate = field(default_factory=AckGate)
    #: Slack team id -> organization id.
    teams: TtlCache[str, int] = field(default_factory=lambda: TtlCache(TEAM_CACHE_SECONDS))
    #: (organization id, Slack user id) -> ``handlers.slack.actor.Actor`` of an active member.
    actors: TtlCache[tuple[int, str], object] = field(default_factory=lambda: TtlCache(ACTOR_CACHE_SECONDS))

    async def org_for_team(self, team_id: str) -> int | None:
        """The organization of a Slack team (cached for ``TEAM_CACHE_SECONDS``), None if there is none."""
        org_id = self.teams.get(team_id)
        if org_id is None:
            org_id = await self.database.resolve_slack_team(team_id)
            if org_id is not None:
                self.teams.put(team_id, org_id)
        return org_id

    def forget_member(self, org_id: int, slack_user_id: str) -> None:
        """Drop a member's cached user row (call after changing their role or deactivating them)."""
        self.actors.invalidate((org_id, slack_user_id))
