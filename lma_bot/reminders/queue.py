"""The due queue of reminders: the seed's ``scheduled_communications`` sorted set, members
``"<organization_id>:<reminder_id>"`` scored by due time. How claiming, leases and rebuilding work:
:mod:`lma_bot.queues`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lma_bot.queues import LeasedQueue, QueueMember
from lma_bot.redis import AnyRedis, RedisKeys


@dataclass(frozen=True, order=True)
class Member(QueueMember):
    @property
    def reminder_id(self) -> int:
        return self.item_id


class DueQueue(LeasedQueue[Member]):
    member_type = Member

    def __init__(self, redis: AnyRedis, keys: RedisKeys) -> None:
        super().__init__(redis, keys, RedisKeys.SCHEDULED_COMMUNICATIONS)

    async def schedule(self, member: Member, due_at: dt.datetime) -> None:
        await self.redis.zadd(self.queue_key, {str(member): due_at.timestamp()})
