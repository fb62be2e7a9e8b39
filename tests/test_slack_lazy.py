"""Lazy listeners run bounded and after the acks in flight; the short caches of workspace and member."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.listener.asyncio_runner import AsyncioListenerRunner
from slack_bolt.request.async_request import AsyncBoltRequest
from sqlalchemy import text

from handlers.slack import GATEWAY, LAZY_RUNNER
from handlers.slack.deps import SlackDeps, TtlCache
from handlers.slack.lazy import (
    BUSY_TEXT,
    AckGate,
    BoundedLazyListenerRunner,
    PooledRespond,
    bound_lazy_listeners,
    lazy_request,
)
from lma_bot.db import Database
from tests.conftest import ScratchDatabase, Servers
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_requests import FORM, form_body, slack_headers, slash_command
from tests.slack_env import SlackEnv, slack_env

LOGGER = logging.getLogger("tests.lazy")


@pytest.fixture
async def env(db: Database, test_database: ScratchDatabase, servers: Servers) -> AsyncIterator[SlackEnv]:
    async with slack_env(db, test_database.owner_url, servers.redis_url) as environment:
        yield environment


def _request(
    text_: str = "show 1", response_url: str = "https://hooks.slack.com/commands/T0TEAM/1/x"
) -> AsyncBoltRequest:
    body = form_body(slash_command(text_, response_url=response_url)).decode()
    return AsyncBoltRequest(body=body, headers={"Content-Type": FORM})


def _deps(env: SlackEnv) -> SlackDeps:
    return env.server.app[GATEWAY].deps


def _runner(env: SlackEnv) -> BoundedLazyListenerRunner:
    return env.server.app[LAZY_RUNNER]


# ------------------------------------------------------------------------------------------ the runner


async def test_at_most_limit_jobs_run_at_once_and_all_run_in_arrival_order() -> None:
    runner = BoundedLazyListenerRunner(LOGGER, limit=3)
    release = asyncio.Event()
    started: list[str] = []
    running = 0
    most = 0

    async def job(body: dict[str, Any]) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        started.append(body["text"])
        await release.wait()
        running -= 1

    for i in range(10):
        runner.start(job, _request(f"show {i}"))
    await asyncio.sleep(0.05)
    assert started == ["show 0", "show 1", "show 2"]
    assert runner.pending == 10
    release.set()
    assert await runner.drain(2.0)
    assert started == [f"show {i}" for i in range(10)]
    assert most == 3
    assert runner.peak == 3
    await runner.aclose()


async def test_a_job_waits_for_the_acks_in_flight_but_only_briefly() -> None:
    gate = AckGate()
    runner = BoundedLazyListenerRunner(LOGGER, gate=gate, ack_priority=0.3)
    ran_at: list[float] = []

    async def job() -> None:
        ran_at.append(time.monotonic())

    with gate.request():
        started = time.monotonic()
        runner.start(job, _request())
        await asyncio.sleep(0.1)
        assert ran_at == []  # an ack is being answered
    assert await runner.drain(1.0)  # the ack went out: the job runs at once
    assert ran_at[0] - started < 0.25

    with gate.request():  # an ack that never ends: the job still runs after ack_priority
        started = time.monotonic()
        runner.start(job, _request())
        assert await runner.drain(2.0)
    assert 0.25 <= ran_at[1] - started < 1.0
    await runner.aclose()


async def test_a_job_that_already_waited_max_defer_does_not_give_way() -> None:
    gate = AckGate()
    now = [100.0]
    runner = BoundedLazyListenerRunner(
        LOGGER, gate=gate, ack_priority=5.0, max_defer=2.0, clock=lambda: now[0]
    )
    done = asyncio.Event()

    async def job() -> None:
        done.set()

    with gate.request():
        runner.start(job, _request())
        now[0] += 2.5  # queued behind a burst for longer than max_defer by the time it gets a slot
        await asyncio.wait_for(done.wait(), 1.0)
    await runner.aclose()


async def test_a_failing_job_does_not_stop_the_others() -> None:
    runner = BoundedLazyListenerRunner(LOGGER, limit=1)
    ran: list[str] = []

    async def job(body: dict[str, Any]) -> None:
        ran.append(body["text"])
        if body["text"] == "show 0":
            raise RuntimeError("boom")

    runner.start(job, _request("show 0"))
    runner.start(job, _request("show 1"))
    assert await runner.drain(2.0)
    assert ran == ["show 0", "show 1"]
    await runner.aclose()


async def test_respond_posts_through_one_pooled_session() -> None:
    async with FakeSlack() as fake:
        runner = BoundedLazyListenerRunner(LOGGER)

        async def job(respond: Any) -> None:
            assert isinstance(respond, PooledRespond)
            await respond(text="Lead #1 Ann", blocks=[{"type": "divider"}], response_type="ephemeral")

        for _ in range(5):
            runner.start(job, _request(response_url=fake.response_url()))
        posts = await fake.wait_for_response_posts(5)
        assert [p.body["text"] for p in posts] == ["Lead #1 Ann"] * 5
        assert posts[0].body["blocks"] == [{"type": "divider"}]
        assert posts[0].body["response_type"] == "ephemeral"
        session = runner.session()
        assert isinstance(session.connector, aiohttp.TCPConnector)
        await runner.aclose()
        assert session.closed


async def test_past_max_pending_a_job_is_refused_and_its_user_told_to_try_again() -> None:
    async with FakeSlack() as fake:
        runner = BoundedLazyListenerRunner(LOGGER, limit=2, max_pending=5)
        release = asyncio.Event()
        ran: list[str] = []

        async def job(body: dict[str, Any]) -> None:
            await release.wait()
            ran.append(body["text"])

        for i in range(8):
            runner.start(job, _request(f"show {i}", response_url=fake.response_url()))
        assert (runner.pending, runner.shed) == (5, 3)
        posts = await fake.wait_for_response_posts(3)
        assert [p.body["text"] for p in posts] == [BUSY_TEXT] * 3
        assert all(p.body["response_type"] == "ephemeral" for p in posts)
        release.set()
        assert await runner.drain(2.0)
        assert sorted(ran) == [f"show {i}" for i in range(5)]  # the first five; none of the refused ones
        runner.start(job, _request("show 9", response_url=fake.response_url()))  # room again
        assert await runner.drain(2.0)
        assert ran[-1] == "show 9"
        assert runner.shed == 3
        await runner.aclose()


def test_lazy_request_is_a_copy_with_its_own_context() -> None:
    original = _request("show 7")
    original.context["response_url"] = "https://hooks.slack.com/commands/T0TEAM/1/x"
    original.context["custom"] = {"nested": [1]}
    ack = original.context.ack
    copied = lazy_request(original, "run_lead")
    assert copied.lazy_only
    assert copied.lazy_function_name == "run_lead"
    assert copied.body == original.body
    assert copied.context is not original.context
    assert not original.lazy_only
    assert copied.context["custom"] == {"nested": [1]}
    assert copied.context["custom"] is not original.context["custom"]
    assert "ack" not in copied.context
    assert copied.context.ack is not ack
    assert copied.context.response_url == original.context.response_url


def test_bolt_attributes_we_replace_still_exist() -> None:
    app = AsyncApp(signing_secret="s", token="xoxb-1")
    listener_runner = app._async_listener_runner
    assert isinstance(listener_runner, AsyncioListenerRunner)
    assert callable(listener_runner._build_lazy_request)
    runner = bound_lazy_listeners(app, AckGate())
    assert listener_runner.lazy_listener_runner is runner
    assert listener_runner._build_lazy_request is lazy_request


# ------------------------------------------------------------------------------------------ end to end


async def test_a_burst_of_commands_is_acked_at_once_and_every_card_arrives(env: SlackEnv) -> None:
    await env.command("create ann@acme.io Ann Lee")
    await env.reply()
    env.fake.delay("response_url", 0.05)  # slow answers keep the lazy slots busy

    started = time.monotonic()
    answers = await asyncio.gather(*(env.command("show ann@acme.io") for _ in range(30)))
    acked_in = time.monotonic() - started
    assert {status for status, _ in answers} == {200}
    assert {body for _, body in answers} == {""}
    assert acked_in < 3.0
    posts = await env.fake.wait_for_response_posts(31, timeout=20)
    cards = [p for p in posts[1:] if str(p.body.get("text", "")).startswith("Lead #")]
    assert len(cards) == 30
    assert len({p.path for p in cards}) == 30
    assert _runner(env).peak <= 4


async def test_a_deactivation_takes_effect_once_the_member_cache_expires(env: SlackEnv, db: Database) -> None:
    deps = _deps(env)
    now = [1000.0]
    deps.actors.clock = lambda: now[0]
    await env.command("list", user="U0REP2")
    assert "No leads here yet" in json.dumps(await env.reply())
    async with db.uow(env.org_id) as session:
        await session.execute(text("UPDATE users SET is_active = false WHERE slack_user_id = 'U0REP2'"))
    now[0] += deps.actors.ttl + 0.1
    await env.command("list", user="U0REP2")
    assert "Your lma-bot account is deactivated" in json.dumps(await env.reply(2))
    assert (env.org_id, "U0REP2") not in deps.actors._entries  # a refused member is never cached


async def test_forget_member_drops_the_cached_row_at_once(env: SlackEnv, db: Database) -> None:
    deps = _deps(env)
    await env.command("list", user="U0REP2")
    await env.reply()
    async with db.uow(env.org_id) as session:
        await session.execute(text("UPDATE users SET is_active = false WHERE slack_user_id = 'U0REP2'"))
    deps.forget_member(env.org_id, "U0REP2")
    await env.command("list", user="U0REP2")
    assert "deactivated" in json.dumps(await env.reply(2))


async def test_team_cache_keeps_found_organizations_only(env: SlackEnv, db: Database) -> None:
    deps = _deps(env)
    assert await deps.org_for_team("T0NOPE") is None
    assert "T0NOPE" not in deps.teams._entries  # a workspace set up a moment later works at once
    assert await deps.org_for_team("T0TEAM") == env.org_id
    assert deps.teams.get("T0TEAM") == env.org_id


async def test_unknown_workspace_set_up_later_is_served_at_once(env: SlackEnv, db: Database) -> None:
    from tests.support import new_org

    await env.command("list", team_id="T0LATER")
    assert "not set up for lma-bot yet" in json.dumps(await env.reply())
    await new_org(db, name="Later", slack_team_id="T0LATER")
    await env.command("list", team_id="T0LATER", user="U0NEW")
    assert "No leads here yet" in json.dumps(await env.reply(2))


def test_ttl_cache_expires_and_stays_bounded() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(5.0, max_entries=3, clock=lambda: now[0])
    cache.put("a", 1)
    assert cache.get("a") == 1
    now[0] = 5.0
    assert cache.get("a") is None
    for key in "bcde":
        cache.put(key, 1)
    assert len(cache) <= 3
    assert cache.get("e") == 1
    cache.invalidate("e")
    assert cache.get("e") is None


async def test_bad_signature_does_not_leave_the_gate_busy(env: SlackEnv) -> None:
    body = form_body(slash_command("show 1", response_url=env.fake.response_url()))
    headers = slack_headers("wrong-secret", body, content_type=FORM)
    assert (await env.client.raw(body, headers))[0] == 401
    assert _deps(env).ack_gate.in_flight == 0
