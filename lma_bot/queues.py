"""Leased work queues in Redis, rebuilt from PostgreSQL: the seed's ``scheduled_communications`` (reminders)
and ``outbound_emails``.

A queue is a sorted set of ``"<organization_id>:<id>"`` members scored by when the item may be handled
(epoch seconds). A worker claims due members with one Lua script that moves them into the queue's
processing set, scored by the claim's lease expiry; a member whose lease expired (its process died) is put
back first, so another process takes it. Both keys share the queue's hash tag (``{name}`` and
``{name}:processing``), so the scripts also run on Redis Cluster.

Redis is never the only copy: :meth:`LeasedQueue.rebuild` reads what PostgreSQL says is pending and puts
back anything Redis lost (a flush, a failover), without disturbing members queued or being processed.
Exactly-once is PostgreSQL's job (each sender records its intent before the external call), not the queue's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.db import Database
from lma_bot.redis import AnyRedis, RedisKeys

log = logging.getLogger(__name__)

# KEYS[1] queue, KEYS[2] processing; ARGV[1] now, ARGV[2] lease seconds, ARGV[3] max members
_CLAIM = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, member in ipairs(expired) do
    redis.call('ZREM', KEYS[2], member)
    redis.call('ZADD', KEYS[1], ARGV[1], member)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, member in ipairs(due) do
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZADD', KEYS[2], until_, member)
end
return due
"""

# KEYS[1] queue, KEYS[2] processing; ARGV: member, score, member, score, ...
# Adds members that are neither queued nor being processed; returns how many it added.
_RECONCILE = """
local added = 0
for i = 1, #ARGV, 2 do
    local member = ARGV[i]
    if not redis.call('ZSCORE', KEYS[2], member) and not redis.call('ZSCORE', KEYS[1], member) then
        redis.call('ZADD', KEYS[1], ARGV[i + 1], member)
        added = added + 1
    end
end
return added
"""

# KEYS[1] queue, KEYS[2] processing; ARGV: member, new score (or '' to drop it), member, score, ...
_SETTLE = """
for i = 1, #ARGV, 2 do
    redis.call('ZREM', KEYS[2], ARGV[i])
    if ARGV[i + 1] ~= '' then
        redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
    else
        redis.call('ZREM', KEYS[1], ARGV[i])
    end
end
return #ARGV / 2
"""


@dataclass(frozen=True, order=True)
class QueueMember:
    organization_id: int
    item_id: int

    def __str__(self) -> str:
        return f"{self.organization_id}:{self.item_id}"

    @classmethod
    def parse(cls, text: str) -> Any:
        org, _, item = text.partition(":")
        if not (org.isdigit() and item.isdigit()):
            return None
        return cls(int(org), int(item))


@dataclass(frozen=True)
class Later:
    """A claimed item that is not to be handled now: put it back in the queue for ``at``."""

    at: dt.datetime


@dataclass(frozen=True)
class Nothing:
    """A claimed item with nothing left to do (done, failed for good, cancelled, gone): drop it."""

    why: str


M = TypeVar("M", bound=QueueMember)
PendingReader = Callable[[AsyncSession, int], Awaitable[list[tuple[int, dt.datetime]]]]


def _score(at: dt.datetime) -> float:
    return at.timestamp()


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class LeasedQueue(Generic[M]):
    """Claim, settle and rebuild one queue of ``member_type`` members."""

    RECONCILE_CHUNK = 500
    member_type: type[M]

    def __init__(self, redis: AnyRedis, keys: RedisKeys, name: str) -> None:
        self.redis = redis
        self.name = name
        self.queue_key = keys.queue(name)
        self.processing_key = keys.queue_part(name, "processing")
        self._keys = [self.queue_key, self.processing_key]
        self._claim = redis.register_script(_CLAIM)
        self._reconcile = redis.register_script(_RECONCILE)
        self._settle = redis.register_script(_SETTLE)

    def _parse(self, raw: Any) -> M | None:
        found = self.member_type.parse(_text(raw))
        return found if isinstance(found, self.member_type) else None

    async def claim(self, *, now: dt.datetime, lease: float, limit: int) -> list[M]:
        """Due members, moved to the processing set until ``now + lease``; expired leases come back first."""
        raw: list[Any] = await self._claim(keys=self._keys, args=[_score(now), lease, limit])
        return [m for m in map(self._parse, raw) if m is not None]

    async def done(self, member: M) -> None:
        """Forget ``member`` (handled, failed for good, cancelled, or not ours)."""
        await self._settle(keys=self._keys, args=[str(member), ""])

    async def retry_at(self, member: M, at: dt.datetime) -> None:
        """Put ``member`` back in the queue for ``at`` (a backoff, a snooze, a pacing or quiet-hours delay)."""
        await self._settle(keys=self._keys, args=[str(member), _score(at)])

    async def settle(self, outcomes: Iterable[tuple[M, dt.datetime | None]]) -> None:
        """:meth:`done` (``None``) or :meth:`retry_at` for many members, one script call per 500."""
        chunk: list[str | float] = []
        for member, at in outcomes:
            chunk += [str(member), "" if at is None else _score(at)]
            if len(chunk) >= 2 * self.RECONCILE_CHUNK:
                await self._settle(keys=self._keys, args=chunk)
                chunk = []
        if chunk:
            await self._settle(keys=self._keys, args=chunk)

    async def reconcile(self, pending: Iterable[tuple[M, dt.datetime]]) -> int:
        """Add every pending member Redis lost; members queued or in processing are left as they are."""
        added = 0
        chunk: list[str | float] = []
        for member, at in pending:
            chunk += [str(member), _score(at)]
            if len(chunk) >= 2 * self.RECONCILE_CHUNK:
                added += int(await self._reconcile(keys=self._keys, args=chunk))
                chunk = []
        if chunk:
            added += int(await self._reconcile(keys=self._keys, args=chunk))
        return added

    async def rebuild(self, database: Database, pending: PendingReader) -> int:
        """Reconcile from PostgreSQL, organization by organization (the documented cross-tenant scan)."""
        added = 0
        for org_id in await database.organization_ids(include_inactive=True):
            async with database.uow(org_id) as session:
                rows = await pending(session, org_id)
            added += await self.reconcile((self.member_type(org_id, item), at) for item, at in rows)
        if added:
            log.warning("queue.rebuilt queue=%s restored=%d", self.name, added)
        return added

    async def run_claimed(
        self,
        *,
        now: dt.datetime,
        lease: float,
        limit: int,
        concurrency: int,
        handle: Callable[[M], Awaitable[None]],
    ) -> int:
        """Claim what is due and ``handle`` each member, ``concurrency`` at a time; a member whose handling
        raises stays in processing and comes back when its lease expires. Returns how many were claimed."""
        members = await self.claim(now=now, lease=lease, limit=limit)
        if not members:
            return 0
        gate = asyncio.Semaphore(concurrency)

        async def one(member: M) -> None:
            async with gate:
                try:
                    await handle(member)
                except Exception:
                    log.exception("queue.handle.error queue=%s member=%s", self.name, member)

        await asyncio.gather(*(one(m) for m in members))
        return len(members)

    async def sizes(self) -> tuple[int, int]:
        """(queued, processing)."""
        return int(await self.redis.zcard(self.queue_key)), int(await self.redis.zcard(self.processing_key))

    async def members(self) -> list[M]:
        """Every member, queued or in processing (tests and operators)."""
        found = []
        for key in self._keys:
            for raw in await self.redis.zrange(key, 0, -1):
                member = self._parse(raw)
                if member is not None:
                    found.append(member)
        return sorted(found)
