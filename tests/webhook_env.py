"""A running lma-bot web app with an organization and its integrations, and a client that posts to them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from lma_bot.config import Settings
from lma_bot.crypto import SecretBox
from lma_bot.db import Database
from lma_bot.entrypoints.web import create_app
from lma_bot.integrations.service import CreatedIntegration, add_integration

KEYS = "x5MAdXDCRh2EUumXV2w3n_qHlu8SxtAcFSivAOtuJcw="
PUBLIC_URL = "https://lma.example.test"


async def new_integration(db: Database, org_id: int, provider: str, **settings: str) -> CreatedIntegration:
    async with db.uow(org_id) as session:
        return await add_integration(
            session,
            org_id=org_id,
            provider=provider,
            settings=settings,
            box=SecretBox([KEYS]),
            public_url=PUBLIC_URL,
        )


@dataclass
class Gateway:
    server: TestServer
    http: aiohttp.ClientSession
    settings: Settings

    def url(self, integration: CreatedIntegration | str) -> str:
        webhook = integration if isinstance(integration, str) else integration.webhook_url
        return str(self.server.make_url(webhook.removeprefix(PUBLIC_URL)))

    async def post(
        self,
        integration: CreatedIntegration | str,
        body: bytes,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json", **(headers or {})}
        async with self.http.post(self.url(integration), data=body, headers=headers, **kw) as response:
            payload = await response.json(content_type=None)
            return response.status, payload


@asynccontextmanager
async def gateway(owner_url: str, redis_url: str) -> AsyncIterator[Gateway]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        DATABASE_URL=owner_url,
        REDIS_URL=redis_url,
        LMA_REDIS_PREFIX=f"lma-test:{uuid.uuid4().hex[:8]}:",
        LMA_ENCRYPTION_KEYS=KEYS,
        LMA_PUBLIC_URL=PUBLIC_URL,
    )
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Gateway(server=server, http=http, settings=settings)
    finally:
        await server.close()
