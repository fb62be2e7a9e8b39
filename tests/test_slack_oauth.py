"""Multi-workspace mode: installing through /slack/install and /slack/oauth_redirect creates the team's
organization, stores the bot token encrypted, makes the installer an admin, and later requests from that
team run with its own token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.crypto import SecretBox
from lma_bot.db import Database
from tests.conftest import ScratchDatabase, Servers
from tests.slack_env import CLIENT_ID, KEY, SlackEnv, slack_env

TEAM = "T0NEWCO"


@pytest.fixture
async def env(db: Database, test_database: ScratchDatabase, servers: Servers) -> AsyncIterator[SlackEnv]:
    async with slack_env(
        db, test_database.owner_url, servers.redis_url, team_id=TEAM, oauth=True
    ) as environment:
        yield environment


async def _install(env: SlackEnv, http: aiohttp.ClientSession) -> tuple[int, str, str]:
    async with http.get(env.server.make_url("/slack/install"), allow_redirects=False) as response:
        assert response.status == 200
        page = await response.text()
        cookie = response.headers["Set-Cookie"]
    link = re.search(r'href="(https://slack.com/oauth/v2/authorize[^"]+)"', page)
    assert link is not None, page
    state = re.search(r"state=([^&\"]+)", link.group(1)).group(1)  # type: ignore[union-attr]
    assert f"client_id={CLIENT_ID}" in link.group(1)
    assert "scope=commands,chat:write,im:write,users:read" in link.group(1)
    cookie_pair = cookie.split(";")[0]
    async with http.get(
        env.server.make_url("/slack/oauth_redirect"),
        params={"code": "c0de", "state": state},
        headers={"Cookie": cookie_pair},
        allow_redirects=False,
    ) as response:
        return response.status, await response.text(), state


async def test_install_creates_the_organization_and_stores_the_token_encrypted(
    env: SlackEnv, db: Database, owner_engine: AsyncEngine
) -> None:
    async with aiohttp.ClientSession() as http:
        status, page, _ = await _install(env, http)
    assert status == 200, page
    [exchange] = env.fake.calls_to("oauth.v2.access")
    token = exchange.response["access_token"]  # type: ignore[index]
    org_id = await db.resolve_slack_team(TEAM)
    assert org_id is not None
    async with owner_engine.connect() as conn:
        org = (
            await conn.execute(text("SELECT name FROM organizations WHERE id = :o"), {"o": org_id})
        ).scalar_one()
        row = (
            await conn.execute(
                text(
                    "SELECT bot_token_encrypted, bot_user_id, installer_user_id FROM slack_installations WHERE organization_id = :o"
                ),
                {"o": org_id},
            )
        ).one()
        admin = (
            await conn.execute(
                text("SELECT role FROM users WHERE organization_id = :o AND slack_user_id = 'U0REP'"),
                {"o": org_id},
            )
        ).scalar_one()
    assert org == env.fake.team_name
    assert token not in row.bot_token_encrypted
    assert "xoxb" not in row.bot_token_encrypted
    assert SecretBox([KEY]).decrypt(row.bot_token_encrypted) == token
    assert (row.bot_user_id, row.installer_user_id, admin) == ("U0BOT", "U0REP", "admin")

    # Requests from the team now run with its own token.
    await env.command("list", user="U0REP")
    await env.reply()
    assert env.fake.calls, env.fake.summary()
    assert {c.token for c in env.fake.calls if c.method not in ("oauth.v2.access", "auth.test")} <= {token}


async def test_a_state_is_good_once(env: SlackEnv) -> None:
    async with aiohttp.ClientSession() as http:
        status, _, state = await _install(env, http)
        assert status == 200
        async with http.get(
            env.server.make_url("/slack/oauth_redirect"),
            params={"code": "again", "state": state},
            allow_redirects=False,
        ) as response:
            assert response.status != 200
    assert len(env.fake.calls_to("oauth.v2.access")) == 1


async def test_a_workspace_that_has_not_installed_is_told_how(env: SlackEnv) -> None:
    status, _ = await env.command("list", team_id="T0NOBODY")
    assert status == 200
    reply = await env.reply()
    assert "not installed in this workspace yet" in reply["text"]  # type: ignore[operator]
    assert "/slack/install" in reply["text"]  # type: ignore[operator]


async def test_install_routes_are_404_in_single_workspace_mode(
    db: Database, test_database: ScratchDatabase, servers: Servers
) -> None:
    async with (
        slack_env(db, test_database.owner_url, servers.redis_url) as single,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(single.server.make_url("/slack/install")) as response:
            assert response.status == 404
            assert "SLACK_CLIENT_ID" in (await response.json())["error"]
