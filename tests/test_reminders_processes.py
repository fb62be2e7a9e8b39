"""`lma-bot scheduler` as real processes: several at once send every due reminder exactly once, and a
process SIGKILLed at either crash point leaves nothing lost or doubled for the next one."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis.asyncio.cluster import RedisCluster
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.redis import AnyRedis, RedisClient, RedisKeys, open_redis
from lma_bot.reminders import service
from lma_bot.reminders.queue import DueQueue, Member
from lma_bot.users.schemas import UserCreate
from lma_bot.users.service import add_user
from tests.conftest import ScratchDatabase, Servers
from tests.fakes.slack_api import FakeSlack
from tests.fakes.tcp_proxy import TcpProxy
from tests.redis_cluster import redis_cluster
from tests.support import new_org

LMA_BOT = str(Path(sys.executable).parent / "lma-bot")


@dataclass
class World:
    db: Database
    owner: AsyncEngine
    redis: AnyRedis
    keys: RedisKeys
    fake: FakeSlack
    env: dict[str, str]
    org_id: int
    users: list[int]
    lead_id: int

    @contextmanager
    def schedulers(
        self, count: int, *, failpoint: str | None = None
    ) -> Iterator[list[subprocess.Popen[bytes]]]:
        env = dict(self.env)
        if failpoint:
            env["LMA_FAILPOINTS"] = failpoint
        procs = [
            subprocess.Popen(
                [LMA_BOT, "scheduler"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            for _ in range(count)
        ]
        try:
            yield procs
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                if proc.stderr is not None:
                    proc.stderr.close()

    async def remind(self, count: int, *, one_person: bool = False) -> list[Member]:
        """``count`` reminders due now, spread over the users (or all for the first one: one coalesced DM)."""
        due = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        members = []
        async with self.db.uow(self.org_id) as session:
            for i in range(count):
                r = await service.create_reminder(
                    session,
                    org_id=self.org_id,
                    lead_id=self.lead_id,
                    user_id=self.users[0 if one_person else i % len(self.users)],
                    created_by=self.users[0],
                    due_at=due,
                    message=f"r{i}",
                )
                members.append(Member(self.org_id, r.id))
        queue = DueQueue(self.redis, self.keys)
        for m in members:
            await queue.schedule(m, due)
        return members

    async def statuses(self) -> dict[str, int]:
        async with self.owner.connect() as conn:
            rows = await conn.execute(
                text("SELECT status, count(*) FROM reminders WHERE organization_id = :o GROUP BY status"),
                {"o": self.org_id},
            )
            return {str(s): int(n) for s, n in rows}

    async def wait_sent(self, count: int, timeout: float = 180.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while (await self.statuses()).get("sent", 0) < count:
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"only {await self.statuses()} after {timeout} s")
            await asyncio.sleep(0.3)

    def delivered(self) -> list[int]:
        """Reminder ids the reminder DMs carried (a coalesced DM lists several; a duplicate shows twice)."""
        return [
            int(rid)
            for m in self.fake.messages.values()
            if (m.get("metadata") or {}).get("event_type") == "lma_reminder"
            for rid in m["metadata"]["event_payload"]["reminder_ids"]
        ]

    def messages(self) -> int:
        return sum(
            1
            for m in self.fake.messages.values()
            if (m.get("metadata") or {}).get("event_type") == "lma_reminder"
        )

    async def fast_forward(self, member: Member) -> None:
        """Make a dead process's claim and intent old enough to be recovered (instead of waiting minutes)."""
        queue = DueQueue(self.redis, self.keys)
        await self.redis.zadd(queue.processing_key, {str(member): 0})
        async with self.owner.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE reminders SET sending_since = sending_since - interval '10 minutes' WHERE id = :i"
                ),
                {"i": member.reminder_id},
            )


@asynccontextmanager
async def _world(
    db: Database, owner: AsyncEngine, client: AnyRedis, keys: RedisKeys, redis_url: str, database_url: str
) -> AsyncIterator[World]:
    async with FakeSlack() as fake:
        org_id = await new_org(db, name="Acme", slack_team_id=f"T{uuid.uuid4().hex[:8].upper()}")
        users = []
        async with db.uow(org_id) as session:
            for i in range(250):
                user = await add_user(
                    session,
                    org_id=org_id,
                    data=UserCreate(
                        email=f"u{i}@acme.test", name=f"User {i}", role="rep", slack_user_id=f"U{i:05d}"
                    ),  # type: ignore[arg-type]
                )
                users.append(user.id)
            lead = await create_lead(
                session,
                org_id=org_id,
                actor_id=users[0],
                data=LeadCreate(email="jo@prospect.test", first_name="Jo"),
            )
            lead_id = lead.id
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(Path.home())),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "LMA_REDIS_PREFIX": keys.prefix,
            "SLACK_API_URL": fake.api_url,
            "SLACK_BOT_TOKEN": "xoxb-procs",
            "LOG_LEVEL": "WARNING",
        }
        yield World(db, owner, client, keys, fake, env, org_id, users, lead_id)


@pytest.fixture
async def world(
    db: Database,
    owner_engine: AsyncEngine,
    redis: tuple[RedisClient, RedisKeys],
    test_database: ScratchDatabase,
    servers: Servers,
) -> AsyncIterator[World]:
    client, keys = redis
    async with _world(db, owner_engine, client, keys, servers.redis_url, test_database.owner_url) as w:
        yield w


@pytest.fixture
async def cluster_world(
    db: Database, owner_engine: AsyncEngine, test_database: ScratchDatabase
) -> AsyncIterator[World]:
    with redis_cluster() as url:
        client = await open_redis(url)
        assert isinstance(client, RedisCluster)
        try:
            async with _world(
                db, owner_engine, client, RedisKeys("lma-test:"), url, test_database.owner_url
            ) as w:
                yield w
        finally:
            await client.aclose()


async def test_three_scheduler_processes_send_1000_due_reminders_exactly_once(world: World) -> None:
    members = await world.remind(1000)
    with world.schedulers(3) as procs:
        await world.wait_sent(1000)
        assert all(p.poll() is None for p in procs)  # nobody crashed
    assert sorted(world.delivered()) == sorted(m.reminder_id for m in members)
    assert world.messages() < 1000  # the four of each person coalesced
    assert await world.statuses() == {"sent": 1000}


async def test_on_a_redis_cluster_three_processes_send_each_reminder_exactly_once(
    cluster_world: World,
) -> None:
    world = cluster_world
    await world.remind(500)
    queue = DueQueue(world.redis, world.keys)
    assert await queue.sizes() == (500, 0)
    with world.schedulers(3) as procs:
        await world.wait_sent(500)
        assert all(p.poll() is None for p in procs)
        # a reconcile that read PostgreSQL just before a send may re-queue a sent reminder; the next claim
        # finds it sent and drops it, so the queue drains
        for _ in range(100):
            if await queue.sizes() == (0, 0):
                break
            await asyncio.sleep(0.1)
        assert await queue.sizes() == (0, 0)
    assert len(set(world.delivered())) == len(world.delivered()) == 500


async def test_two_scheduler_processes_share_the_work(world: World) -> None:
    await world.remind(300)
    with world.schedulers(2):
        await world.wait_sent(300)
    assert len(set(world.delivered())) == len(world.delivered()) == 300


@pytest.mark.parametrize("count", [1, 3])
async def test_sigkill_after_the_intent_is_sent_once_by_the_next_process(world: World, count: int) -> None:
    members = await world.remind(count, one_person=True)  # 3: one coalesced DM
    with world.schedulers(1, failpoint="reminder.after_intent") as [dead]:
        assert await asyncio.to_thread(dead.wait, 90) == -signal.SIGKILL
    assert await world.statuses() == {"sending": count}
    assert world.delivered() == []
    for member in members:
        await world.fast_forward(member)
    with world.schedulers(1):
        await world.wait_sent(count)
    assert sorted(world.delivered()) == sorted(m.reminder_id for m in members)
    assert world.messages() == 1


@pytest.mark.parametrize("count", [1, 3])
async def test_sigkill_after_the_post_is_not_sent_again(world: World, count: int) -> None:
    members = await world.remind(count, one_person=True)
    with world.schedulers(1, failpoint="reminder.after_post") as [dead]:
        assert await asyncio.to_thread(dead.wait, 90) == -signal.SIGKILL
    assert await world.statuses() == {"sending": count}
    assert len(world.delivered()) == count  # Slack has it; PostgreSQL does not know
    for member in members:
        await world.fast_forward(member)
    with world.schedulers(1):
        await world.wait_sent(count)
    assert sorted(world.delivered()) == sorted(m.reminder_id for m in members)  # found, not posted again
    assert world.messages() == 1
    assert world.fake.calls_to("conversations.history") != []


async def test_redis_away_for_a_while_the_process_keeps_running_and_sends_late_not_lost(
    world: World, servers: Servers
) -> None:
    target = urlsplit(servers.redis_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    world.env["REDIS_URL"] = f"redis://127.0.0.1:{proxy.port}{target.path or '/0'}"
    try:
        with world.schedulers(1) as [proc]:
            await asyncio.sleep(1.5)  # running, idle
            await proxy.stop()  # Redis unreachable
            await world.remind(5)  # due now, queued straight into the real Redis
            await asyncio.sleep(4)
            assert proc.poll() is None  # no crash loop
            assert world.delivered() == []
            await proxy.start()
            await world.wait_sent(5, timeout=30)
            assert proc.poll() is None
    finally:
        await proxy.stop()
    assert len(set(world.delivered())) == len(world.delivered()) == 5
