"""The ``outbound_emails`` queue in Redis: a sorted set of ``"<organization_id>:<communication_id>"`` scored by
the time the email may go (now for a new email, later for a retry after a transient SMTP error).

Claiming is the reminders' pattern (:mod:`lma_bot.reminders.queue`): one Lua script moves due members into the
queue's processing set, scored by the claim's lease expiry, and first puts back members whose lease expired
(their process died). The queue and its processing set share the hash tag ``{outbound_emails}``, so the
scripts also run on Redis Cluster.

Redis is never the only copy: :func:`lma_bot.email.outbox.pending` reads the emails PostgreSQL still has
queued and :meth:`OutboxQueue.reconcile` puts back whatever Redis lost, leaving members that are queued or
being processed alone. Exactly-once is PostgreSQL's job (the send intent), not this queue's.
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

# KEYS[1] queue, KEYS[2] processing; ARGV[1] member, ARGV[2] new score (or '' to drop it)
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
class EmailMember:
    organization_id: int
    communication_id: int

    def __str__(self) -> str:
        return f"{self.organization_id}:{self.communication_id}"

    @classmethod
    def parse(cls, text: str) -> EmailMember | None:
        org, _, cid = text.partition(":")
        if not (org.isdigit() and cid.isdigit()):
            return None
        return cls(int(org), int(cid))


def _score(at: dt.datetime) -> float:
    return at.timestamp()


class OutboxQueue:
    """Push, claim, settle and rebuild the outbound emails in Redis."""

    RECONCILE_CHUNK = 500

    def __init__(self, redis: AnyRedis, keys: RedisKeys) -> None:
        self.redis = redis
        self.queue_key = keys.outbound_emails
        self.processing_key = keys.queue_part(RedisKeys.OUTBOUND_EMAILS, "processing")
        self._keys = [self.queue_key, self.processing_key]
        self._claim = redis.register_script(_CLAIM)
        self._reconcile = redis.register_script(_RECONCILE)
        self._settle = redis.register_script(_SETTLE)

    async def push(self, member: EmailMember, at: dt.datetime) -> None:
        """Queue ``member`` for ``at`` (an email already queued keeps the earlier of the two times)."""
        await self.redis.zadd(self.queue_key, {str(member): _score(at)}, lt=True)

    async def claim(self, *, now: dt.datetime, lease: float, limit: int) -> list[EmailMember]:
        """Due members, moved to the processing set until ``now + lease``; expired leases come back first."""
        raw: list[Any] = await self._claim(keys=self._keys, args=[_score(now), lease, limit])
        members = [EmailMember.parse(m.decode() if isinstance(m, bytes) else str(m)) for m in raw]
        return [m for m in members if m is not None]

    async def done(self, member: EmailMember) -> None:
        """Forget ``member`` (sent, failed for good, or nothing left to send)."""
        await self._settle(keys=self._keys, args=[str(member), ""])

    async def retry_at(self, member: EmailMember, at: dt.datetime) -> None:
        """Put ``member`` back in the queue for ``at`` (a backoff, or another process holds its intent)."""
        await self._settle(keys=self._keys, args=[str(member), _score(at)])

    async def reconcile(self, pending: Iterable[tuple[EmailMember, dt.datetime]]) -> int:
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

    async def sizes(self) -> tuple[int, int]:
        """(queued, processing)."""
        return int(await self.redis.zcard(self.queue_key)), int(await self.redis.zcard(self.processing_key))

    async def members(self) -> list[EmailMember]:
        """Every member, queued or in processing (tests and operators)."""
        found = []
        for key in self._keys:
            for raw in await self.redis.zrange(key, 0, -1):
                member = EmailMember.parse(raw.decode() if isinstance(raw, bytes) else str(raw))
                if member is not None:
                    found.append(member)
        return sorted(found)
