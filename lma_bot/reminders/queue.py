"""The due queue of reminders in Redis: the seed's ``scheduled_communications`` sorted set.

Members are ``"<organization_id>:<reminder_id>"`` scored by due time (epoch seconds). A scheduler claims due
members with one Lua script that moves them into the queue's processing set, scored by the claim's lease
expiry; a member whose lease expired (its process died) is put back first, so another process takes it.
Both keys share the queue's hash tag (``{scheduled_communications}`` and ``{scheduled_communications}:processing``),
so the scripts also run on Redis Cluster.

Redis is never the only copy: :func:`lma_bot.reminders.service.due_members` reads what PostgreSQL says is
pending and :meth:`DueQueue.reconcile` puts back anything Redis lost (a flush, a failover), without
disturbing members that are being processed. Sending is made exactly-once by PostgreSQL, not by this queue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lma_bot.redis import AnyRedis, RedisKeys

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

# KEYS[1] queue, KEYS[2] processing; ARGV[1] member, ARGV[2] new due score (or '' to drop it)
_SETTLE = """
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
else
    redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
"""


@dataclass(frozen=True, order=True)
class Member:
    organization_id: int
    reminder_id: int

    def __str__(self) -> str:
        return f"{self.organization_id}:{self.reminder_id}"

    @classmethod
    def parse(cls, text: str) -> Member | None:
        org, _, rid = text.partition(":")
        if not (org.isdigit() and rid.isdigit()):
            return None
        return cls(int(org), int(rid))


def _score(at: dt.datetime) -> float:
    return at.timestamp()


class DueQueue:
    """Claim, settle and rebuild the due reminders in Redis."""

    RECONCILE_CHUNK = 500

    def __init__(self, redis: AnyRedis, keys: RedisKeys) -> None:
        self.redis = redis
        self.queue_key = keys.scheduled_communications
        self.processing_key = keys.queue_part(RedisKeys.SCHEDULED_COMMUNICATIONS, "processing")
        self._keys = [self.queue_key, self.processing_key]
        self._claim = redis.register_script(_CLAIM)
        self._reconcile = redis.register_script(_RECONCILE)
        self._settle = redis.register_script(_SETTLE)

    async def schedule(self, member: Member, due_at: dt.datetime) -> None:
        await self.redis.zadd(self.queue_key, {str(member): _score(due_at)})

    async def claim(self, *, now: dt.datetime, lease: float, limit: int) -> list[Member]:
        """Due members, moved to the processing set until ``now + lease``; expired leases come back first."""
        raw: list[Any] = await self._claim(keys=self._keys, args=[_score(now), lease, limit])
        members = [Member.parse(m.decode() if isinstance(m, bytes) else str(m)) for m in raw]
        return [m for m in members if m is not None]

    async def done(self, member: Member) -> None:
        """Forget ``member`` (sent, failed for good, cancelled, or not ours to send)."""
        await self._settle(keys=self._keys, args=[str(member), ""])

    async def retry_at(self, member: Member, due_at: dt.datetime) -> None:
        """Put ``member`` back in the queue for ``due_at`` (a snooze, a backoff, a quiet-hours delay)."""
        await self._settle(keys=self._keys, args=[str(member), _score(due_at)])

    async def reconcile(self, pending: Iterable[tuple[Member, dt.datetime]]) -> int:
        """Add every pending member Redis lost; members queued or in processing are left as they are."""
        added = 0
        chunk: list[str | float] = []
        for member, due_at in pending:
            chunk += [str(member), _score(due_at)]
            if len(chunk) >= 2 * self.RECONCILE_CHUNK:
                added += int(await self._reconcile(keys=self._keys, args=chunk))
                chunk = []
        if chunk:
            added += int(await self._reconcile(keys=self._keys, args=chunk))
        return added

    async def sizes(self) -> tuple[int, int]:
        """(queued, processing)."""
        return int(await self.redis.zcard(self.queue_key)), int(await self.redis.zcard(self.processing_key))
