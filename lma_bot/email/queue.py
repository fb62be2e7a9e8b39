"""The ``outbound_emails`` queue: members ``"<organization_id>:<communication_id>"`` scored by the time the
email may go (now for a new email, later for a retry after a transient SMTP error). How claiming, leases and
rebuilding work: :mod:`lma_bot.queues`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lma_bot.queues import LeasedQueue, QueueMember
from lma_bot.redis import AnyRedis, RedisKeys


@dataclass(frozen=True, order=True)
class EmailMember(QueueMember):
    @property
    def communication_id(self) -> int:
        return self.item_id


class OutboxQueue(LeasedQueue[EmailMember]):
    member_type = EmailMember

    def __init__(self, redis: AnyRedis, keys: RedisKeys) -> None:
        super().__init__(redis, keys, RedisKeys.OUTBOUND_EMAILS)

    async def push(self, member: EmailMember, at: dt.datetime) -> None:
        """Queue ``member`` for ``at`` (an email already queued keeps the earlier of the two times)."""
        await self.redis.zadd(self.queue_key, {str(member): at.timestamp()}, lt=True)
