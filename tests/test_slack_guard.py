"""The request guard in front of Bolt: signatures and timestamps, url_verification, retried events,
response_url hosts, and acking within Slack's 3 s while the Slack Web API is slow."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from handlers.slack import GATEWAY
from handlers.slack.guard import verify
from lma_bot.db import Database
from tests.conftest import ScratchDatabase, Servers
from tests.fakes.slack_requests import (
    FORM,
    SLACK_DOC_BODY,
    SLACK_DOC_SIGNATURE,
    SLACK_DOC_SIGNING_SECRET,
    SLACK_DOC_TIMESTAMP,
    block_action,
    event_callback,
    form_body,
    sign,
    slack_headers,
    slash_command,
    url_verification,
)
from tests.slack_env import SECRET, SlackEnv, slack_env


@pytest.fixture
async def env(db: Database, test_database: ScratchDatabase, servers: Servers) -> AsyncIterator[SlackEnv]:
    async with slack_env(db, test_database.owner_url, servers.redis_url) as environment:
        yield environment


async def _lead_count(db: Database, org: int) -> int:
    async with db.uow(org) as session:
        return int((await session.execute(text("SELECT count(*) FROM leads"))).scalar_one())


def _create_body(env: SlackEnv) -> bytes:
    return form_body(slash_command("create sig@x.io Sig", response_url=env.fake.response_url()))


@pytest.mark.parametrize(
    "tamper",
    [
        "stale",
        "future",
        "one_byte",
        "abc_timestamp",
        "no_timestamp",
        "no_signature",
        "wrong_secret",
        "negative",
    ],
)
async def test_bad_signatures_are_401_and_nothing_runs(env: SlackEnv, db: Database, tamper: str) -> None:
    body = _create_body(env)
    now = int(time.time())
    headers = slack_headers(SECRET, body, content_type=FORM)
    if tamper == "stale":
        headers = slack_headers(SECRET, body, content_type=FORM, timestamp=now - 301)
    elif tamper == "future":
        headers = slack_headers(SECRET, body, content_type=FORM, timestamp=now + 301)
    elif tamper == "one_byte":
        body = body.replace(b"Sig", b"Sih")
    elif tamper == "abc_timestamp":
        headers["X-Slack-Request-Timestamp"] = "abc"
        headers["X-Slack-Signature"] = sign(SECRET, "abc", body)
    elif tamper == "negative":
        headers["X-Slack-Request-Timestamp"] = f"-{now}"
    elif tamper == "no_timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif tamper == "no_signature":
        del headers["X-Slack-Signature"]
    elif tamper == "wrong_secret":
        headers = slack_headers("not-the-secret", body, content_type=FORM)
    status, answer = await env.client.raw(body, headers)
    assert status == 401
    assert json.loads(answer) == {"error": "invalid Slack signature"}
    assert env.fake.calls == []
    assert env.fake.response_posts == []
    assert await _lead_count(db, env.org_id) == 0


async def test_a_fresh_correct_signature_passes(env: SlackEnv, db: Database) -> None:
    body = _create_body(env)
    status, _ = await env.client.raw(
        body, slack_headers(SECRET, body, content_type=FORM, timestamp=int(time.time()) - 290)
    )
    assert status == 200
    await env.reply()
    assert await _lead_count(db, env.org_id) == 1


def test_slacks_published_signing_example_with_a_frozen_clock() -> None:
    now = int(SLACK_DOC_TIMESTAMP) + 10
    assert (
        verify(SLACK_DOC_SIGNING_SECRET, SLACK_DOC_TIMESTAMP, SLACK_DOC_SIGNATURE, SLACK_DOC_BODY, now=now)
        is None
    )
    assert verify(
        SLACK_DOC_SIGNING_SECRET, SLACK_DOC_TIMESTAMP, SLACK_DOC_SIGNATURE, SLACK_DOC_BODY + b"x", now=now
    )
    assert verify(
        SLACK_DOC_SIGNING_SECRET, SLACK_DOC_TIMESTAMP, SLACK_DOC_SIGNATURE, SLACK_DOC_BODY, now=now + 400
    )


async def test_published_example_passes_the_gateway_with_its_clock_frozen(env: SlackEnv) -> None:
    gateway = env.server.app[GATEWAY]
    gateway.signing_secret = SLACK_DOC_SIGNING_SECRET
    gateway.clock = lambda: float(SLACK_DOC_TIMESTAMP) + 1
    headers = {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": SLACK_DOC_TIMESTAMP,
        "X-Slack-Signature": SLACK_DOC_SIGNATURE,
    }
    status, _ = await env.client.raw(SLACK_DOC_BODY, headers)
    assert status != 401  # accepted by the guard (Bolt has no /webhook-collect listener)


async def test_url_verification_echoes_the_challenge(env: SlackEnv) -> None:
    payload = json.dumps(url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")).encode()
    status, body = await env.client.raw(
        payload, slack_headers(SECRET, payload, content_type="application/json")
    )
    assert (status, json.loads(body)) == (
        200,
        {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"},
    )


async def test_retried_event_is_acknowledged_once_without_a_second_effect(env: SlackEnv) -> None:
    mention = {
        "type": "app_mention",
        "user": "U0REP",
        "text": "<@U0BOT> hi",
        "ts": "1.1",
        "channel": "C0GENERAL",
    }
    envelope = event_callback(mention, event_id="Ev0RETRY")
    assert (await env.client.event(envelope))[0] == 200
    assert (await env.client.event(envelope, retry_num=1, retry_reason="http_timeout"))[0] == 200
    assert (await env.client.event(envelope, retry_num=2, retry_reason="http_timeout"))[0] == 200
    other = event_callback(mention | {"ts": "1.2"}, event_id="Ev0OTHER")
    assert (await env.client.event(other))[0] == 200
    replies = await env.fake.wait_for("chat.postMessage", 2)
    await asyncio.sleep(0.3)  # a late duplicate would show up here
    assert len(env.fake.calls_to("chat.postMessage")) == 2
    assert sorted(c.params["thread_ts"] for c in replies) == ["1.1", "1.2"]


async def test_response_url_off_slacks_host_is_refused_without_any_call(env: SlackEnv, db: Database) -> None:
    body = form_body(slash_command("create evil@x.io", response_url="https://attacker.example/hook"))
    status, answer = await env.client.raw(body, slack_headers(SECRET, body, content_type=FORM))
    assert status == 400
    assert json.loads(answer) == {"error": "response_url is not on Slack's host"}
    click = block_action("lead-open", '{"lead_id":1}', response_url="http://127.0.0.2:1/hooks/x")
    assert (await env.client.action(click))[0] == 400
    assert env.fake.calls == []
    assert await _lead_count(db, env.org_id) == 0


async def test_acks_within_3_seconds_while_the_slack_api_takes_5(env: SlackEnv, db: Database) -> None:
    env.fake.delay("*", 5.0)
    started = time.monotonic()
    status, _ = await env.command("list", user="U0NEW")  # unknown member: needs users.info first
    assert status == 200
    assert time.monotonic() - started < 3.0
    await env.fake.wait_for("users.info", timeout=2)
    reply = await env.reply(timeout=10)
    assert "No leads here yet" in json.dumps(reply)


async def test_slack_not_configured_is_503(
    db: Database, test_database: ScratchDatabase, servers: Servers
) -> None:
    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    from lma_bot.config import Settings
    from lma_bot.entrypoints.web import create_app

    settings = Settings(_env_file=None, DATABASE_URL=test_database.owner_url, REDIS_URL=servers.redis_url)  # type: ignore[call-arg]
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        async with (
            ClientSession() as http,
            http.post(server.make_url("/slack/events"), data=b"x") as response,
        ):
            assert response.status == 503
            assert "SLACK_SIGNING_SECRET" in (await response.json())["error"]
    finally:
        await server.close()
