"""A running lma-bot web app wired to a fake Slack Web API, and a Slack-side client that signs requests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp.test_utils import TestServer

from lma_bot.config import Settings
from lma_bot.db import Database
from lma_bot.entrypoints.web import create_app
from lma_bot.users.schemas import UserCreate
from lma_bot.users.service import add_user
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_requests import CHANNEL_ID, TEAM_ID, SlackClient
from tests.support import new_org

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
CLIENT_ID = "1111.2222"
KEY = "x5MAdXDCRh2EUumXV2w3n_qHlu8SxtAcFSivAOtuJcw="
CLIENT_ID = "1111.2222"
KEY = "x5MAdXDCRh2EUumXV2w3n_qHlu8SxtAcFSivAOtuJcw="


@dataclass
class SlackEnv:
    fake: FakeSlack
    client: SlackClient
    server: TestServer
    settings: Settings
    org_id: int
    users: dict[str, int]  # slack id -> user id

    @property
    def events_url(self) -> str:
        return str(self.server.make_url("/slack/events"))

    async def command(self, text: str, *, user: str = "U0REP", **kw: object) -> tuple[int, str]:
        return await self.client.command(text, user_id=user, user_name=user.lower(), **kw)

    async def reply(self, count: int = 1, timeout: float = 5.0) -> dict[str, object]:
        """The last of the first ``count`` posts to response_url (what the user sees)."""
        posts = await self.fake.wait_for_response_posts(count, timeout=timeout)
        return posts[count - 1].body


PEOPLE = {
    "U0REP": ("Rita Rep", "rita@acme.test", "rep"),
    "U0REP2": ("Ray Rep", "ray@acme.test", "rep"),
    "U0MGR": ("Mia Manager", "mia@acme.test", "manager"),
    "U0ADM": ("Ada Admin", "ada@acme.test", "admin"),
}


@asynccontextmanager
async def slack_env(
    db: Database,
    owner_url: str,
    redis_url: str,
    *,
    team_id: str = TEAM_ID,
    register_people: bool = True,
    oauth: bool = False,
) -> AsyncIterator[SlackEnv]:
    """Single-workspace mode with an organization for ``team_id`` and its people; with ``oauth=True``,
    multi-workspace mode with no organization (installing the app creates it)."""
    async with FakeSlack(team_id=team_id) as fake:
        mode: dict[str, str] = (
            {"SLACK_CLIENT_ID": CLIENT_ID, "SLACK_CLIENT_SECRET": "client-secret", "LMA_ENCRYPTION_KEYS": KEY}
            if oauth
            else {"SLACK_BOT_TOKEN": TOKEN}
        )
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            DATABASE_URL=owner_url,
            REDIS_URL=redis_url,
            LMA_REDIS_PREFIX=f"lma-test:{uuid.uuid4().hex[:8]}:",
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=fake.api_url,
            **mode,
        )
        org_id = 0 if oauth else await new_org(db, name="Acme", slack_team_id=team_id)
        users: dict[str, int] = {}
        for slack_id, (name, email, role) in PEOPLE.items():
            fake.add_user(
                slack_id, name=name.split()[0].lower(), real_name=name, email=email, tz="Europe/Berlin"
            )
            if register_people and not oauth:
                async with db.uow(org_id) as session:
                    user = await add_user(
                        session,
                        org_id=org_id,
                        data=UserCreate(email=email, name=name, role=role, slack_user_id=slack_id),  # type: ignore[arg-type]
                    )
                    users[slack_id] = user.id
        fake.add_user(
            "U0NEW", name="nico", real_name="Nico Newbie", email="nico@acme.test", tz="America/Chicago"
        )
        server = TestServer(create_app(settings), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                client = SlackClient(
                    session, str(server.make_url("/slack/events")), SECRET, response_url=fake.response_url
                )
                yield SlackEnv(
                    fake=fake, client=client, server=server, settings=settings, org_id=org_id, users=users
                )
        finally:
            await server.close()


__all__ = ["CHANNEL_ID", "SlackEnv", "slack_env"]
