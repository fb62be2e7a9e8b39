"""An n8n stand-in on loopback for workflow tests: records each trigger POST, checks the execution row is
already in the database when the request arrives, and answers from a script (status codes, or a stall)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.crypto import SecretBox
from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.workflows import service as workflows
from tests.support import new_org
from tests.webhook_env import KEYS, new_integration

BOX = SecretBox([KEYS])


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    row_status: str | None  # the execution row's status seen by the receiver when the request arrived

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


@dataclass
class FakeN8n:
    owner: AsyncEngine
    script: list[int | str] = field(default_factory=list)  # 200, 500, 429, "stall", "redirect:<url>"
    received: list[Received] = field(default_factory=list)
    server: TestServer | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/webhook/lead-flow") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        execution_id = int(request.headers.get("X-LMA-Execution-Id", "0"))
        async with self.owner.connect() as conn:
            status = (
                await conn.execute(
                    text("SELECT status FROM workflow_executions WHERE id = :i"), {"i": execution_id}
                )
            ).scalar_one_or_none()
        self.received.append(Received(headers=dict(request.headers), body=body, row_status=status))
        self.arrived.set()
        step = self.script.pop(0) if self.script else 200
        if step == "stall":
            await asyncio.sleep(5)
            return web.json_response({"late": True})
        if isinstance(step, str) and step.startswith("redirect:"):
            raise web.HTTPFound(step.removeprefix("redirect:"))
        if step == 429:
            return web.json_response({"message": "slow down"}, status=429, headers={"Retry-After": "0"})
        assert isinstance(step, int)
        return web.json_response({"message": "Workflow was started"}, status=step)


@asynccontextmanager
async def fake_n8n(owner: AsyncEngine, *script: int | str) -> AsyncIterator[FakeN8n]:
    fake = FakeN8n(owner=owner, script=list(script))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    fake.server = TestServer(app, host="127.0.0.1")
    await fake.server.start_server()
    try:
        yield fake
    finally:
        await fake.server.close()


@dataclass(frozen=True)
class Tenant:
    org_id: int
    integration_id: int
    secret: str


async def tenant(db: Database, *, self_hosted: bool = True) -> Tenant:
    org = await new_org(db)
    settings = {"allow_private_targets": "true"} if self_hosted else {}
    created = await new_integration(db, org, "n8n", **settings)
    return Tenant(org_id=org, integration_id=created.id, secret=created.generated_secrets["webhook_secret"])


async def add_workflow(
    db: Database,
    org_id: int,
    url: str,
    *,
    trigger: str = "lead_created",
    conditions: dict[str, Any] | None = None,
    name: str = "Welcome sequence",
) -> int:
    async with db.uow(org_id) as session:
        workflow = await workflows.create_workflow(
            session, org_id=org_id, name=name, trigger=trigger, url=url, conditions=conditions
        )
        return workflow.id


async def add_lead(db: Database, org_id: int, email: str = "ann@acme.test", **fields: Any) -> int:
    async with db.uow(org_id) as session:
        lead = await create_lead(
            session, org_id=org_id, data=LeadCreate(email=email, first_name="Ann", last_name="Lee", **fields)
        )
        return lead.id


async def executions(owner: AsyncEngine, org_id: int) -> list[dict[str, Any]]:
    async with owner.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, workflow_id, lead_id, status, retry_count, response_status, error_message, "
                "trigger_event, lease_expires_at FROM workflow_executions WHERE organization_id = :o ORDER BY id"
            ),
            {"o": org_id},
        )
        return [dict(r._mapping) for r in rows]
