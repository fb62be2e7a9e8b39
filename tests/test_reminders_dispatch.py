"""Reminder delivery against real PostgreSQL and Redis and the fake Slack Web API: exactly once across
dispatchers and crashes, Slack errors, a flushed Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.jobs.reminders import ReminderDispatcher
from handlers.slack.blocks.reminders import rows_in, tail_id
from handlers.slack.ids import ReminderRef
from lma_bot.config import Settings
from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.models import Reminder, User
from lma_bot.redis import RedisClient, RedisKeys
from lma_bot.reminders import service
from lma_bot.reminders.queue import DueQueue, Member
from lma_bot.users.schemas import UserCreate
from lma_bot.users.service import add_user
from tests.conftest import Servers
from tests.fakes.slack_api import FakeSlack
from tests.support import new_org

TOKEN = "xoxb-reminders"
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Env:
    db: Database
    redis: RedisClient
    keys: RedisKeys
    fake: FakeSlack
    settings: Settings
    org_id: int
    rep: int  # user ids
    manager: int
    lead_id: int
    clock: Clock
    queue: DueQueue
    made: list[ReminderDispatcher] = field(default_factory=list)

    def dispatcher(self, *, database: Database | None = None, **kw: object) -> ReminderDispatcher:
        made = ReminderDispatcher(
            settings=self.settings,
            database=database or self.db,
            redis=self.redis,
            keys=self.keys,
            clock=self.clock,
            pace_seconds=kw.pop("pace_seconds", 0.0),  # type: ignore[arg-type]
            **kw,  # type: ignore[arg-type]
        )
        self.made.append(made)
        return made

    async def remind(
        self, *, due: dt.datetime | None = None, user: int | None = None, message: str = "call"
    ) -> Member:
        async with self.db.uow(self.org_id) as session:
            reminder = await service.create_reminder(
                session,
                org_id=self.org_id,
                lead_id=self.lead_id,
                user_id=user or self.rep,
                created_by=self.manager,
                due_at=due or self.clock.now,
                message=message,
            )
            member = Member(self.org_id, reminder.id)
        await self.queue.schedule(member, due or self.clock.now)
        return member

    async def row(self, member: Member) -> Reminder:
        async with self.db.uow(self.org_id) as session:
            return await service.get_reminder(session, org_id=self.org_id, reminder_id=member.reminder_id)

    def posts_to(self, slack_id: str) -> list[dict[str, object]]:
        return [
            c.params for c in self.fake.calls_to("chat.postMessage") if c.params.get("channel") == slack_id
        ]

    def dms(self) -> list[dict[str, Any]]:
        """The reminder DMs the fake Slack holds (one per successful post), oldest first."""
        return sorted(
            (
                m
                for m in self.fake.messages.values()
                if (m.get("metadata") or {}).get("event_type") == "lma_reminder"
            ),
            key=lambda m: float(m["ts"]),
        )

    def delivered(self) -> list[str]:
        """send keys of the reminder DMs the fake Slack holds (one per message)."""
        return [str(m["metadata"]["event_payload"]["send_key"]) for m in self.dms()]

    def carried(self) -> list[int]:
        """Reminder ids the DMs carried, one entry per reminder per message (a duplicate shows twice)."""
        return [int(i) for m in self.dms() for i in m["metadata"]["event_payload"]["reminder_ids"]]


@pytest.fixture
async def env(db: Database, redis: tuple[RedisClient, RedisKeys], servers: Servers) -> AsyncIterator[Env]:
    client, keys = redis
    async with FakeSlack() as fake:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            DATABASE_URL="postgresql+asyncpg://unused@127.0.0.1/unused",
            REDIS_URL=servers.redis_url,
            SLACK_API_URL=fake.api_url,
            SLACK_BOT_TOKEN=TOKEN,
        )
        org_id = await new_org(db, name="Acme", slack_team_id=f"T{uuid.uuid4().hex[:8].upper()}")
        async with db.uow(org_id) as session:
            rep = await add_user(
                session,
                org_id=org_id,
                data=UserCreate(email="rita@acme.test", name="Rita Rep", role="rep", slack_user_id="U0REP"),  # type: ignore[arg-type]
            )
            manager = await add_user(
                session,
                org_id=org_id,
                data=UserCreate(
                    email="mia@acme.test", name="Mia Manager", role="manager", slack_user_id="U0MGR"
                ),  # type: ignore[arg-type]
            )
            lead = await create_lead(
                session,
                org_id=org_id,
                actor_id=rep.id,
                data=LeadCreate(email="jo@prospect.test", first_name="Jo"),
            )
            ids = (rep.id, manager.id, lead.id)
        environment = Env(
            db=db,
            redis=client,
            keys=keys,
            fake=fake,
            settings=settings,
            org_id=org_id,
            rep=ids[0],
            manager=ids[1],
            lead_id=ids[2],
            clock=Clock(T0),
            queue=DueQueue(client, keys),
        )
        yield environment
        for made in environment.made:
            await made.close()


async def test_a_due_reminder_is_sent_once_as_a_dm_with_buttons_and_marked_sent(env: Env) -> None:
    member = await env.remind(message="ask about the budget")
    later = await env.remind(due=T0 + dt.timedelta(hours=1))
    handled = await env.dispatcher().tick()
    assert handled == 1
    [post] = env.posts_to("U0REP")
    assert "ask about the budget" in str(post["text"])
    actions = [b for b in post["blocks"] if b["type"] == "actions"]  # type: ignore[union-attr,index]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        "reminder-done",
        "reminder-snooze-hour",
        "reminder-snooze-tomorrow",
    ]
    row = await env.row(member)
    assert row.status == "sent"
    assert row.slack_ts is not None
    assert env.delivered() == [str(row.send_key)]
    assert await env.queue.sizes() == (1, 0)  # only the one due in an hour is left
    assert (await env.row(later)).status == "scheduled"
    assert await env.dispatcher().tick() == 0
    assert len(env.posts_to("U0REP")) == 1


async def test_three_dispatchers_send_500_due_reminders_exactly_once(env: Env, servers: Servers) -> None:
    members = []
    async with env.db.uow(env.org_id) as session:
        for i in range(500):
            r = await service.create_reminder(
                session,
                org_id=env.org_id,
                lead_id=env.lead_id,
                user_id=env.rep if i % 2 else env.manager,
                created_by=env.manager,
                due_at=T0,
                message=f"r{i}",
            )
            members.append(Member(env.org_id, r.id))
    for m in members:
        await env.queue.schedule(m, T0)
    others = [
        Database.from_url(env.db.engine.url.render_as_string(hide_password=False), pool_size=4)
        for _ in range(2)
    ]
    try:
        dispatchers = [
            env.dispatcher(claim_limit=40),
            *(env.dispatcher(database=d, claim_limit=40) for d in others),
        ]
        while sum(await env.queue.sizes()) > 0:
            await asyncio.gather(*(d.tick() for d in dispatchers))
    finally:
        for d in others:
            await d.dispose()
    carried = env.carried()
    assert sorted(carried) == sorted(m.reminder_id for m in members)  # each reminder in exactly one DM
    assert len(set(env.delivered())) == len(env.delivered())  # one message per send key
    async with env.db.uow(env.org_id) as session:
        statuses = (await session.execute(select(Reminder.status))).scalars().all()
    assert set(statuses) == {"sent"}


async def test_killed_after_the_intent_before_the_post_is_sent_once_after_the_timeout(env: Env) -> None:
    member = await env.remind()
    # a process claims it and records its intent, then dies before calling Slack
    [claimed] = await env.queue.claim(now=env.clock(), lease=120, limit=10)
    async with env.db.uow(env.org_id) as session:
        step = await service.begin_send(
            session, org_id=env.org_id, reminder_id=claimed.reminder_id, now=env.clock()
        )
    assert isinstance(step, service.Send)
    # while its lease holds, nobody else touches it
    assert await env.dispatcher().tick() == 0
    env.clock.advance(121)  # the claim's lease (120 s) and the intent's SEND_TIMEOUT (60 s) have passed
    assert await env.dispatcher().tick() == 1
    assert env.posts_to("U0REP") != []
    row = await env.row(member)
    assert row.status == "sent"
    assert row.send_key == step.send_key  # the recovered intent, not a new one
    assert row.attempts == 2
    assert len(env.delivered()) == 1


async def test_killed_after_the_post_before_marking_is_not_sent_again(env: Env) -> None:
    member = await env.remind()
    [claimed] = await env.queue.claim(now=env.clock(), lease=120, limit=10)
    async with env.db.uow(env.org_id) as session:
        step = await service.begin_send(
            session, org_id=env.org_id, reminder_id=claimed.reminder_id, now=env.clock()
        )
    assert isinstance(step, service.Send)
    # the dead process had posted the DM (with its send key) but not marked it sent
    from slack_sdk.web.async_client import AsyncWebClient

    slack = AsyncWebClient(token=TOKEN, base_url=env.fake.api_url)
    posted = await slack.chat_postMessage(
        channel="U0REP",
        text="Reminder",
        metadata={"event_type": "lma_reminder", "event_payload": {"send_key": str(step.send_key)}},
    )
    env.clock.advance(121)
    assert await env.dispatcher().tick() == 1
    assert len(env.posts_to("U0REP")) == 1  # only the dead process's post
    row = await env.row(member)
    assert row.status == "sent"
    assert row.slack_ts == posted["ts"]
    assert env.fake.calls_to("conversations.history") != []


async def test_a_sending_row_younger_than_the_send_timeout_is_left_alone(env: Env) -> None:
    member = await env.remind()
    [claimed] = await env.queue.claim(now=env.clock(), lease=1, limit=10)
    async with env.db.uow(env.org_id) as session:
        await service.begin_send(session, org_id=env.org_id, reminder_id=claimed.reminder_id, now=env.clock())
    env.clock.advance(2)  # the Redis lease expired but the sender may still be talking to Slack
    assert await env.dispatcher().tick() == 1
    assert env.posts_to("U0REP") == []
    assert (await env.row(member)).status == "sending"
    [(queued, score)] = await env.redis.zrange(env.queue.queue_key, 0, -1, withscores=True)
    assert queued == str(member)
    assert score == pytest.approx((T0 + service.SEND_TIMEOUT).timestamp())


async def test_rate_limited_waits_retry_after_and_posts_once(env: Env) -> None:
    member = await env.remind()
    env.fake.rate_limit("chat.postMessage", retry_after=2)
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        await asyncio.sleep(seconds)

    started = time.monotonic()
    assert await env.dispatcher(sleep=sleep).tick() == 1
    assert time.monotonic() - started >= 2.0
    assert waited == [2.0]
    assert len(env.delivered()) == 1
    assert (await env.row(member)).status == "sent"


@pytest.mark.parametrize(
    "error", ["channel_not_found", "user_not_found", "account_inactive", "token_revoked"]
)
async def test_permanent_errors_fail_with_the_reason_no_retry_and_tell_the_creator(
    env: Env, error: str
) -> None:
    member = await env.remind()
    env.fake.fail("chat.postMessage", error, times=1)
    assert await env.dispatcher().tick() == 1
    row = await env.row(member)
    assert row.status == "failed"
    assert row.failure_reason == error
    assert await env.queue.sizes() == (0, 0)
    [told] = env.posts_to("U0MGR")
    assert error in str(told["text"])
    env.clock.advance(3600)
    assert await env.dispatcher().tick() == 0
    assert len(env.posts_to("U0REP")) == 1  # the failed attempt only


async def test_transient_errors_back_off_then_succeed(env: Env) -> None:
    member = await env.remind()
    env.fake.http_error("chat.postMessage", 503, times=1)
    assert await env.dispatcher().tick() == 1
    row = await env.row(member)
    assert row.status == "scheduled"
    assert row.failure_reason is not None
    assert row.due_at == T0 + service.backoff_delay(1)
    assert await env.dispatcher().tick() == 0  # not before the backoff
    env.clock.advance(service.backoff_delay(1).total_seconds())
    assert await env.dispatcher().tick() == 1
    row = await env.row(member)
    assert row.status == "sent"
    assert row.attempts == 2
    assert len(env.delivered()) == 1


async def test_transient_errors_give_up_after_the_cap(env: Env) -> None:
    member = await env.remind()
    env.fake.fail("chat.postMessage", "internal_error")
    for _ in range(service.MAX_ATTEMPTS):
        await env.dispatcher().tick()
        env.clock.advance(301)
    row = await env.row(member)
    assert row.status == "failed"
    assert row.attempts == service.MAX_ATTEMPTS
    assert row.failure_reason == "gave up after 6 attempts: internal_error"
    assert await env.queue.sizes() == (0, 0)


async def test_a_recipient_without_slack_fails_without_calling_slack(env: Env) -> None:
    async with env.db.uow(env.org_id) as session:
        ghost = await add_user(
            session,
            org_id=env.org_id,
            data=UserCreate(email="g@acme.test", name="Ghost", role="rep"),  # type: ignore[arg-type]
        )
    member = await env.remind(user=ghost.id)
    assert await env.dispatcher().tick() == 1
    row = await env.row(member)
    assert row.status == "failed"
    assert row.failure_reason == "the person to remind has no Slack account"
    assert env.posts_to("U0REP") == []


async def test_reminders_due_together_for_one_person_arrive_as_one_dm_listing_each(env: Env) -> None:
    mine = [await env.remind(message=f"item {i}") for i in range(3)]
    other = await env.remind(user=env.manager, message="other channel")
    assert await env.dispatcher(pace_seconds=1.0).tick() == 4
    [dm] = env.posts_to("U0REP")
    blocks: list[dict[str, Any]] = dm["blocks"]  # type: ignore[assignment]
    assert rows_in(blocks) == [m.reminder_id for m in mine]
    assert "3 follow-ups due" in json.dumps(blocks[0])
    for m in mine:  # each reminder its own row with its own controls
        [tail] = [b for b in blocks if b.get("block_id") == tail_id(m.reminder_id)]
        assert [e["action_id"] for e in tail["elements"]] == [
            "reminder-done",
            "reminder-snooze-hour",
            "reminder-snooze-tomorrow",
        ]
        assert {ReminderRef.model_validate_json(e["value"]).reminder_id for e in tail["elements"]} == {
            m.reminder_id
        }
    assert all(f"item {i}" in json.dumps(blocks) for i in range(3))
    rows = [await env.row(m) for m in mine]
    assert {(r.status, r.slack_ts, r.send_key) for r in rows} == {
        ("sent", rows[0].slack_ts, rows[0].send_key)
    }
    assert dm["metadata"]["event_payload"]["send_key"] == str(rows[0].send_key)  # type: ignore[index]
    assert [p["channel"] for p in env.posts_to("U0MGR")] == ["U0MGR"]  # a single reminder: the usual DM
    assert (await env.row(other)).status == "sent"
    assert len(env.fake.calls_to("chat.postMessage")) == 2
    assert await env.queue.sizes() == (0, 0)


async def test_more_than_fit_in_one_dm_are_split_into_messages_paced_a_second_apart(env: Env) -> None:
    mine = [await env.remind(message=f"m{i}") for i in range(5)]
    other = await env.remind(user=env.manager, message="other channel")
    dispatcher = env.dispatcher(pace_seconds=1.0, per_message=2)
    started = time.monotonic()
    assert await dispatcher.tick() == 6  # the rep's later parts wait in memory for the channel, not in Redis
    elapsed = time.monotonic() - started
    parts = [c for c in env.fake.calls_to("chat.postMessage") if c.params["channel"] == "U0REP"]
    assert [c.status for c in parts] == [200, 200, 200]  # no post refused: the slot is taken first
    assert [len(rows_in(c.params["blocks"])) for c in parts] == [2, 2, 1]
    heads = [json.dumps(c.params["blocks"][0]) for c in parts]
    assert [f"({i} of 3)" in head for i, head in enumerate(heads, 1)] == [True, True, True]
    assert parts[2].params["metadata"]["event_payload"]["reminder_ids"] == [mine[4].reminder_id]
    assert parts[1].at - parts[0].at >= 0.95  # paced
    assert parts[2].at - parts[1].at >= 0.95
    assert elapsed >= 1.9
    assert sorted(env.carried()) == sorted(m.reminder_id for m in [*mine, other])
    assert len(env.dms()) == 4
    assert {(await env.row(m)).status for m in [*mine, other]} == {"sent"}
    assert await env.queue.sizes() == (0, 0)


async def test_a_message_not_posted_soon_after_its_intent_goes_back_to_the_queue(env: Env) -> None:
    """A backlog (one post at a time, Slack slow) keeps the second person's DM waiting past the deadline:
    rather than post on an intent a recovery may soon take over, it gives the intent back."""
    first = await env.remind(message="first")
    second = await env.remind(user=env.manager, message="second")
    env.fake.delay("chat.postMessage", 0.5)
    assert await env.dispatcher(concurrency=1, post_deadline=0.3).tick() == 2
    assert len(env.fake.calls_to("chat.postMessage")) == 1
    [sent, waiting] = sorted([await env.row(first), await env.row(second)], key=lambda r: r.status != "sent")
    assert sent.status == "sent"
    assert (waiting.status, waiting.send_key, waiting.failure_reason) == (
        "scheduled",
        None,
        "not posted in time",
    )
    assert await env.dispatcher().tick() == 1  # back in the queue, due now: the next run posts it
    assert sorted(env.carried()) == sorted([first.reminder_id, second.reminder_id])


async def test_killed_with_coalesced_messages_each_reminder_is_sent_once(env: Env) -> None:
    """A dead process had coalesced 5 reminders into two messages (keys K1: 3, K2: 2), recorded both
    intents in one UPDATE, posted the first, and died. The next one marks K1's three sent from Slack's copy
    and posts only K2's two."""
    members = [await env.remind(message=f"m{i}") for i in range(5)]
    claimed = await env.queue.claim(now=env.clock(), lease=120, limit=10)
    k1, k2 = uuid.uuid4(), uuid.uuid4()
    keys = {m.reminder_id: (k1 if i < 3 else k2) for i, m in enumerate(sorted(claimed))}
    async with env.db.uow(env.org_id) as session:
        due, other = await service.lock_due(
            session, org_id=env.org_id, reminder_ids=list(keys), now=env.clock()
        )
        assert (len(due), other) == (5, {})
        await service.record_intents(session, org_id=env.org_id, keys=keys, now=env.clock())
    from slack_sdk.web.async_client import AsyncWebClient

    slack = AsyncWebClient(token=TOKEN, base_url=env.fake.api_url)
    first = [rid for rid, k in keys.items() if k == k1]
    posted = await slack.chat_postMessage(
        channel="U0REP",
        text="3 follow-ups due",
        metadata={
            "event_type": "lma_reminder",
            "event_payload": {"send_key": str(k1), "reminder_ids": first},
        },
    )
    assert await env.dispatcher().tick() == 0  # the dead process's claim holds for its lease
    env.clock.advance(121)
    assert await env.dispatcher().tick() == 5
    assert sorted(env.carried()) == sorted(m.reminder_id for m in members)  # nothing twice, nothing lost
    _dead, again = env.posts_to("U0REP")  # the dead process's post, then K2's message only
    assert again["metadata"]["event_payload"] == {  # type: ignore[index]
        "send_key": str(k2),
        "reminder_ids": sorted(rid for rid, k in keys.items() if k == k2),
    }
    rows = {m.reminder_id: await env.row(m) for m in members}
    assert {r.status for r in rows.values()} == {"sent"}
    assert {rid for rid, r in rows.items() if r.slack_ts == posted["ts"]} == set(first)
    assert {r.send_key for r in rows.values()} == {k1, k2}  # recovered under their own keys
    assert {r.attempts for r in rows.values()} == {2}


async def test_a_flushed_redis_is_rebuilt_from_postgres_nothing_lost_or_doubled(env: Env) -> None:
    sent = await env.remind()
    await env.dispatcher().tick()
    pending = [await env.remind(due=T0 + dt.timedelta(minutes=i)) for i in range(1, 4)]
    cancelled = await env.remind(due=T0 + dt.timedelta(minutes=5))
    async with env.db.uow(env.org_id) as session:
        mgr = await session.get(User, (env.org_id, env.manager))
        assert mgr is not None
        await service.cancel(session, org_id=env.org_id, reminder_id=cancelled.reminder_id, actor=mgr)
    async for key in env.redis.scan_iter(match=env.keys.pattern()):
        await env.redis.delete(key)  # FLUSHALL of our prefix
    assert await env.queue.sizes() == (0, 0)
    assert await env.dispatcher().reconcile() == 3
    assert await env.dispatcher().reconcile() == 0  # idempotent
    env.clock.advance(600)
    assert await env.dispatcher().tick() == 3
    assert len(env.delivered()) == 2  # the three overdue ones, found due together, in one DM
    assert sorted(env.carried()) == sorted(m.reminder_id for m in [sent, *pending])
    assert (await env.row(sent)).status == "sent"
    for m in pending:
        assert (await env.row(m)).status == "sent"
    assert (await env.row(cancelled)).status == "cancelled"


async def test_a_snoozed_reminder_in_the_queue_waits_for_its_new_time(env: Env) -> None:
    member = await env.remind(due=T0)
    async with env.db.uow(env.org_id) as session:
        rep = await session.get(User, (env.org_id, env.rep))
        assert rep is not None
        await service.snooze(
            session,
            org_id=env.org_id,
            reminder_id=member.reminder_id,
            actor=rep,
            until=T0 + dt.timedelta(hours=1),
        )
    assert await env.dispatcher().tick() == 1  # claimed at its old time, put back for the new one
    assert env.posts_to("U0REP") == []
    env.clock.advance(3600)
    assert await env.dispatcher().tick() == 1
    assert len(env.delivered()) == 1


async def test_reminders_are_invisible_to_another_organization(env: Env, owner_engine: AsyncEngine) -> None:
    await env.remind()
    other = await new_org(env.db, name="Globex")
    async with env.db.uow(other) as session:
        assert (await session.execute(select(Reminder))).all() == []
        assert await service.pending(session, org_id=other) == []
    async with owner_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM reminders"))).scalar_one() == 1


async def _set_prefs(env: Env, user_id: int, tz: str, prefs: dict[str, object]) -> None:
    async with env.db.uow(env.org_id) as session:
        user = await session.get(User, (env.org_id, user_id))
        assert user is not None
        user.timezone = tz
        user.preferences = prefs


async def test_a_day_only_reminder_waits_out_quiet_hours_an_explicit_one_does_not(env: Env) -> None:
    await _set_prefs(env, env.rep, "UTC", {"quiet_hours": {"start": "08:00", "end": "10:00"}})  # T0 is 09:00
    async with env.db.uow(env.org_id) as session:
        day_only = await service.create_reminder(
            session,
            org_id=env.org_id,
            lead_id=env.lead_id,
            user_id=env.rep,
            created_by=env.rep,
            due_at=T0,
            explicit_time=False,
        )
        members = [Member(env.org_id, day_only.id)]
    await env.queue.schedule(members[0], T0)
    explicit = await env.remind(due=T0)
    assert await env.dispatcher().tick() == 2
    assert len(env.delivered()) == 1
    assert (await env.row(explicit)).status == "sent"
    assert (await env.row(members[0])).status == "scheduled"
    [(_, score)] = await env.redis.zrange(env.queue.queue_key, 0, -1, withscores=True)
    assert score == dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC).timestamp()
    env.clock.advance(3600)
    assert await env.dispatcher().tick() == 1
    assert (await env.row(members[0])).status == "sent"


async def test_morning_digest_once_a_day_in_the_users_timezone_after_quiet_hours(
    env: Env, servers: Servers
) -> None:
    await _set_prefs(env, env.rep, "Asia/Tokyo", {})
    await _set_prefs(env, env.manager, "UTC", {"digest": False})
    for i in range(12):
        await env.remind(message=f"follow {i}")
    await env.remind(user=env.manager)
    await env.dispatcher().tick()  # all 13 sent
    env.fake.reset()
    env.clock.advance(60)
    # 09:01 UTC is 18:01 in Tokyo: after 08:30 and outside 20-08, so the digest is due
    others = [
        Database.from_url(env.db.engine.url.render_as_string(hide_password=False), pool_size=2)
        for _ in range(2)
    ]
    try:
        counts = await asyncio.gather(*(env.dispatcher(database=d).digests() for d in [env.db, *others]))
    finally:
        for d in others:
            await d.dispose()
    assert sorted(counts) == [0, 0, 1]  # three processes, one digest
    [digest] = env.posts_to("U0REP")
    assert "*12* follow-ups" in json.dumps(digest["blocks"])
    assert "and 2 more" in json.dumps(digest["blocks"])
    assert env.posts_to("U0MGR") == []  # turned off
    assert await env.dispatcher().digests() == 0  # not twice the same day
    env.clock.advance(3 * 3600)  # 21:00 in Tokyo, same day: quiet hours
    assert await env.dispatcher().digests() == 0
    env.clock.advance(12 * 3600)  # 09:00 in Tokyo the next day
    assert await env.dispatcher().digests() == 1
