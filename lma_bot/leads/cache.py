"""Read-through cache of lead cards in Redis (``lead:{id}``). PostgreSQL stays the truth: a miss, a stale
entry or Redis being down all fall back to the database. Every change invalidates after its commit."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from redis.exceptions import RedisError

from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCard
from lma_bot.leads.service import build_card
from lma_bot.redis import AnyRedis, RedisKeys

log = logging.getLogger(__name__)

CARD_TTL_SECONDS = 600


class LeadCardCache:
    def __init__(self, redis: AnyRedis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys

    async def get(self, database: Database, *, org_id: int, lead_id: int) -> LeadCard:
        key = self.keys.lead(lead_id)
        try:
            raw = await self.redis.get(key)
        except RedisError as exc:
            log.warning("lead_cache.get_failed lead_id=%s error=%s", lead_id, type(exc).__name__)
            raw = None
        if raw is not None:
            try:
                card = LeadCard.model_validate_json(raw)
            except ValidationError:
                card = None
            if card is not None and card.organization_id == org_id:
                return card
        async with database.uow(org_id) as session:
            card = await build_card(session, org_id=org_id, lead_id=lead_id)
        try:
            await self.redis.set(key, card.model_dump_json(), ex=CARD_TTL_SECONDS)
        except RedisError as exc:
            log.warning("lead_cache.set_failed lead_id=%s error=%s", lead_id, type(exc).__name__)
        return card

    async def invalidate(self, *lead_ids: int) -> None:
        if not lead_ids:
            return
        try:
            await self.redis.delete(*(self.keys.lead(i) for i in lead_ids))
        except RedisError as exc:
            log.warning("lead_cache.invalidate_failed lead_ids=%s error=%s", lead_ids, type(exc).__name__)
