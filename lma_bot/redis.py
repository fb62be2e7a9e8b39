"""Redis client factory and the only place that spells Redis keys.

Redis is a cache and a queue, never the only copy: every key here can be rebuilt from PostgreSQL. Keys are
the seed design's, behind ``LMA_REDIS_PREFIX``. The two queues carry their own name as a hash tag
(``{scheduled_communications}``) so a queue and its companion keys (processing set, leases) land in one
slot and one Lua script can touch them together on Redis Cluster.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

RedisClient = aioredis.Redis
#: What the queues accept: a single server, or a Redis Cluster (one queue and its companions share a slot).
AnyRedis = aioredis.Redis | RedisCluster


def create_redis(url: str, **kwargs: Any) -> RedisClient:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``) that returns ``str`` values."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 2.0,
        "socket_timeout": 5.0,
        "health_check_interval": 30,
    }
    options.update(kwargs)
    client: RedisClient = aioredis.Redis.from_url(url, **options)
    return client


async def open_redis(url: str, **kwargs: Any) -> AnyRedis:
    """A client for ``url``; when that server is a Redis Cluster node, a cluster client (it discovers the
    other nodes and routes each key to its slot)."""
    client = create_redis(url, **kwargs)
    try:
        info = await client.info("cluster")
    except Exception:
        return client  # not reachable yet: a plain client reconnects on its own
    if not info.get("cluster_enabled"):
        return client
    await client.aclose()
    options: dict[str, Any] = {"decode_responses": True, "socket_connect_timeout": 2.0, "socket_timeout": 5.0}
    options.update(kwargs)
    cluster: RedisCluster = RedisCluster.from_url(url, **options)
    await cluster.initialize()
    return cluster


class RedisKeys:
    """Every key the application uses, with the configured prefix applied."""

    OUTBOUND_EMAILS = "outbound_emails"
    SCHEDULED_COMMUNICATIONS = "scheduled_communications"

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    # Session management
    def session(self, session_id: str) -> str:
        return self._key(f"sessions:{session_id}")

    def user_sessions(self, user_id: int) -> str:
        return self._key(f"user_sessions:{user_id}")

    # Lead caching (lead ids are unique across organizations; cached values carry organization_id and
    # readers check it, so a cache entry can never cross the tenant wall)
    def lead(self, lead_id: int) -> str:
        return self._key(f"lead:{lead_id}")

    def lead_score(self, lead_id: int) -> str:
        return self._key(f"lead_score:{lead_id}")

    # Workflow caching
    def workflow(self, workflow_id: int) -> str:
        return self._key(f"workflow:{workflow_id}")

    def active_workflows(self, organization_id: int) -> str:
        return self._key(f"active_workflows:{organization_id}")

    # Short-lived idempotency markers (Slack retries, double submits); losing them is harmless because
    # PostgreSQL constraints are the final guard.
    def dedupe(self, scope: str, token: str) -> str:
        return self._key(f"dedupe:{scope}:{token}")

    # Pacing of Slack posts per channel, shared by every scheduler process
    def slack_pace(self, channel: str) -> str:
        return self._key(f"slack_pace:{channel}")

    # One rewrite at a time of a Slack message several people or clicks may change (a coalesced reminder DM)
    def slack_message_lock(self, channel: str, ts: str) -> str:
        return self._key(f"slack_message_lock:{channel}:{ts}")

    # Communication queues (hash-tagged by queue name)
    def queue(self, name: str) -> str:
        return self._key(f"{{{name}}}")

    def queue_part(self, name: str, part: str) -> str:
        """A companion key of queue ``name`` in the same cluster slot, e.g. its processing set."""
        return self._key(f"{{{name}}}:{part}")

    @property
    def outbound_emails(self) -> str:
        return self.queue(self.OUTBOUND_EMAILS)

    @property
    def scheduled_communications(self) -> str:
        return self.queue(self.SCHEDULED_COMMUNICATIONS)

    def pattern(self) -> str:
        """Glob matching every key under this prefix (tests clean only their own prefix with it)."""
        return f"{self.prefix}*"
