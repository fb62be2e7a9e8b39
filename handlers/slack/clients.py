"""Web API clients for work that does not start from a Slack request (scheduler jobs, hot-lead alerts):
the organization's bot token (``SLACK_BOT_TOKEN`` in single-workspace mode, else its stored installation),
cached for a few minutes, and one client per token."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from lma_bot.config import Settings
from lma_bot.crypto import SecretBox
from lma_bot.db import Database
from lma_bot.models import Organization
from lma_bot.workspaces.service import find_installation

TOKEN_CACHE_SECONDS = 300.0
ClientFor = Callable[[int], Awaitable[AsyncWebClient | None]]


@dataclass
class BotClients:
    settings: Settings
    database: Database
    _tokens: dict[int, tuple[float, str | None]] = field(default_factory=dict)
    _clients: dict[str, AsyncWebClient] = field(default_factory=dict)
    _session: aiohttp.ClientSession | None = None

    def __post_init__(self) -> None:
        keys = self.settings.encryption_keys
        self.box = SecretBox(keys) if keys else None

    async def client_for(self, org_id: int) -> AsyncWebClient | None:
        """The organization's bot client; None when the workspace is not installed."""
        token = await self._token(org_id)
        if token is None:
            return None
        client = self._clients.get(token)
        if client is None:
            if self._session is None or self._session.closed:
                # one pool of keep-alive connections for every client (not a new connection per call)
                self._session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=10), connector=aiohttp.TCPConnector(limit=50)
                )
            client = AsyncWebClient(
                token=token, base_url=self.settings.slack_api_url, timeout=10, session=self._session
            )
            self._clients[token] = client
        return client

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._clients.clear()

    async def _token(self, org_id: int) -> str | None:
        if not (self.settings.slack_client_id and self.settings.slack_client_secret):
            return self.settings.slack_bot_token
        cached = self._tokens.get(org_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        token = None
        if self.box is not None:
            async with self.database.uow(org_id) as session:
                team_id = (
                    await session.execute(select(Organization.slack_team_id).where(Organization.id == org_id))
                ).scalar_one_or_none()
                if team_id:
                    found = await find_installation(session, org_id=org_id, team_id=team_id, box=self.box)
                    token = found.bot_token if found is not None else None
        self._tokens[org_id] = (time.monotonic() + TOKEN_CACHE_SECONDS, token)
        return token
