from __future__ import annotations

from redis.crc import key_slot

from lma_bot.redis import RedisClient, RedisKeys


def test_every_seed_key_behind_the_prefix() -> None:
    keys = RedisKeys("acme:")
    assert keys.session("s1") == "acme:sessions:s1"
    assert keys.user_sessions(7) == "acme:user_sessions:7"
    assert keys.lead(42) == "acme:lead:42"
    assert keys.lead_score(42) == "acme:lead_score:42"
    assert keys.workflow(3) == "acme:workflow:3"
    assert keys.active_workflows(9) == "acme:active_workflows:9"
    assert keys.outbound_emails == "acme:{outbound_emails}"
    assert keys.scheduled_communications == "acme:{scheduled_communications}"
    assert RedisKeys().lead(1) == "lead:1"
    assert keys.slack_pace("D123") == "acme:slack_pace:D123"


def test_a_queue_and_its_companions_share_a_cluster_slot() -> None:
    keys = RedisKeys("p:")
    queue = keys.scheduled_communications
    processing = keys.queue_part(RedisKeys.SCHEDULED_COMMUNICATIONS, "processing")
    assert key_slot(queue.encode()) == key_slot(processing.encode())
    assert key_slot(queue.encode()) != key_slot(keys.outbound_emails.encode())


async def test_clients_work_against_real_redis_and_prefixes_do_not_collide(
    redis: tuple[RedisClient, RedisKeys],
) -> None:
    client, keys = redis
    other = RedisKeys(keys.prefix + "other:")
    await client.set(keys.lead(1), "mine")
    await client.set(other.lead(1), "theirs")
    assert await client.get(keys.lead(1)) == "mine"
    await client.zadd(keys.scheduled_communications, {"reminder:1": 1700000000})
    assert await client.zrangebyscore(keys.scheduled_communications, 0, "+inf") == ["reminder:1"]
    await client.delete(other.lead(1))
