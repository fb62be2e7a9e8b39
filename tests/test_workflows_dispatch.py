"""Workflow executions out to n8n: the outbox row first, signed payload, retries, refusals, the sweeper."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lma_bot.db import Database
from lma_bot.errors import InvalidInput
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import change_status, create_lead
from lma_bot.notes.service import add_note
from lma_bot.webhooks.n8n import verify
from lma_bot.workflows import service as workflows
from lma_bot.workflows.dispatch import RetryPolicy, running
from lma_bot.workflows.payloads import TriggerPayload
from tests.workflow_env import BOX, add_lead, add_workflow, executions, fake_n8n, tenant

FAST = RetryPolicy(max_attempts=4, base_seconds=0.02, max_seconds=0.1, timeout_seconds=0.5)


async def _settle(dispatcher: object) -> None:
    await asyncio.wait_for(dispatcher.wait_idle(), 10)  # type: ignore[attr-defined]


async def test_execution_row_exists_before_the_post_and_signature_verifies(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org = await tenant(db)
    async with fake_n8n(owner_engine) as n8n:
        workflow_id = await add_workflow(db, org.org_id, n8n.url())
        async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
            lead_id = await add_lead(db, org.org_id, tags=["vip"])
            await _settle(dispatcher)
    assert len(n8n.received) == 1
    got = n8n.received[0]
    assert got.row_status == "pending"
    verify(got.headers, got.body, {"webhook_secret": org.secret}, time.time())
    payload = TriggerPayload.model_validate(got.json)
    assert payload.event == "lead.created"
    assert payload.execution_id == int(got.headers["X-LMA-Execution-Id"])
    assert payload.organization_id == org.org_id
    assert payload.workflow.id == workflow_id
    assert payload.lead is not None
    assert payload.lead.id == lead_id
    assert payload.lead.tags == ["vip"]
    rows = await executions(owner_engine, org.org_id)
    assert [(r["status"], r["response_status"], r["retry_count"]) for r in rows] == [("running", 200, 0)]
    assert rows[0]["lease_expires_at"] is None


async def test_retries_on_500_then_success_counts_retries(db: Database, owner_engine: AsyncEngine) -> None:
    org = await tenant(db)
    async with fake_n8n(owner_engine, 500, 503, 200) as n8n:
        await add_workflow(db, org.org_id, n8n.url())
        async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
            await add_lead(db, org.org_id)
            await _settle(dispatcher)
    assert len(n8n.received) == 3
    assert [r.headers["X-LMA-Attempt"] for r in n8n.received] == ["1", "2", "3"]
    assert len({r.body for r in n8n.received}) == 1  # the same body every attempt
    rows = await executions(owner_engine, org.org_id)
    assert [(r["status"], r["response_status"], r["retry_count"]) for r in rows] == [("running", 200, 2)]


async def test_4xx_is_not_retried(db: Database, owner_engine: AsyncEngine) -> None:
    org = await tenant(db)
    async with fake_n8n(owner_engine, 404) as n8n:
        await add_workflow(db, org.org_id, n8n.url())
        async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
            await add_lead(db, org.org_id)
            await _settle(dispatcher)
    assert len(n8n.received) == 1
    rows = await executions(owner_engine, org.org_id)
    assert [(r["status"], r["response_status"], r["retry_count"]) for r in rows] == [("error", 404, 0)]
    assert rows[0]["error_message"].startswith("HTTP 404")


async def test_429_is_retried_after_retry_after(db: Database, owner_engine: AsyncEngine) -> None:
    org = await tenant(db)
    async with fake_n8n(owner_engine, 429, 200) as n8n:
        await add_workflow(db, org.org_id, n8n.url())
        async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
            await add_lead(db, org.org_id)
            await _settle(dispatcher)
    rows = await executions(owner_engine, org.org_id)
    assert [(r["status"], r["response_status"], r["retry_count"]) for r in rows] == [("running", 200, 1)]


async def test_timeout_is_retried_and_gives_up_after_max_attempts(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org = await tenant(db)
    policy = RetryPolicy(max_attempts=2, base_seconds=0.02, max_seconds=0.05, timeout_seconds=0.3)
    async with fake_n8n(owner_engine, "stall", "stall") as n8n:
        await add_workflow(db, org.org_id, n8n.url())
        async with running(db, BOX, retry=policy, sweep_every=None) as dispatcher:
            await add_lead(db, org.org_id)
            await _settle(dispatcher)
    assert len(n8n.received) == 2
    rows = await executions(owner_engine, org.org_id)
    assert [(r["status"], r["retry_count"]) for r in rows] == [("error", 1)]
    assert "timed out" in rows[0]["error_message"]
    assert "gave up after 2 attempts" in rows[0]["error_message"]


async def test_timeout_then_success(db: Database, owner_engine: AsyncEngine) -> None:
    org = await tenant(db)
    async with fake_n8n(owner_engine, "stall", 200) as n8n:
        await add_workflow(db, org.org_id, n8n.url())
        async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
            await add_lead(db, org.org_id)
            await _settle(dispatcher)
    rows = await executions(owner_engine, org.org_id)
    assert [(r["status"], r["response_status"], r["retry_count"]) for r in rows] == [("running", 200, 1)]


async def test_redirect_is_not_followed(db: Database, owner_engine: AsyncEngine) -> None:
    org = await tenant(db)
    async with fake_n8n(owner_engine) as inner:
        async with fake_n8n(owner_engine, f"redirect:{inner.url('/metadata')}") as n8n:
            await add_workflow(db, org.org_id, n8n.url())
            async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
                await add_lead(db, org.org_id)
                await _settle(dispatcher)
    assert inner.received == []
    rows = await executions(owner_engine, org.org_id)
    assert [(r["status"], r["response_status"], r["retry_count"]) for r in rows] == [("error", 302, 0)]
    assert "redirects are not followed" in rows[0]["error_message"]


async def test_loopback_refused_at_creation_without_self_hosted(db: Database) -> None:
    org = await tenant(db, self_hosted=False)
    for url in (
        "http://127.0.0.1:5678/webhook/x",
        "http://localhost:5678/webhook/x",
        "http://[::1]/webhook/x",
    ):
        async with db.uow(org.org_id) as session:
            with pytest.raises(InvalidInput, match="loopback address"):
                await workflows.create_workflow(
                    session, org_id=org.org_id, name="x", trigger="lead_created", url=url
                )
    async with db.uow(org.org_id) as session:
        with pytest.raises(InvalidInput, match="link-local"):
            await workflows.create_workflow(
                session, org_id=org.org_id, name="x", trigger="lead_created", url="http://169.254.169.254/x"
            )


async def test_loopback_refused_at_send_time_when_self_hosted_is_withdrawn(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org = await tenant(db)
    async with fake_n8n(owner_engine) as n8n:
        await add_workflow(db, org.org_id, n8n.url())
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("UPDATE integrations SET configuration = '{}'::jsonb WHERE organization_id = :o"),
                {"o": org.org_id},
            )
        async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
            await add_lead(db, org.org_id)
            await _settle(dispatcher)
    assert n8n.received == []
    rows = await executions(owner_engine, org.org_id)
    assert [(r["status"], r["retry_count"]) for r in rows] == [("error", 0)]
    assert "loopback address" in rows[0]["error_message"]


async def test_org_setting_allows_self_hosted(db: Database, owner_engine: AsyncEngine) -> None:
    org = await tenant(db, self_hosted=False)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE organizations SET settings = '{\"allow_private_workflow_targets\": true}'::jsonb "
                "WHERE id = :o"
            ),
            {"o": org.org_id},
        )
    async with fake_n8n(owner_engine) as n8n:
        await add_workflow(db, org.org_id, n8n.url())
        async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
            await add_lead(db, org.org_id)
            await _settle(dispatcher)
    assert len(n8n.received) == 1


async def test_conditions_and_triggers_status_note(db: Database, owner_engine: AsyncEngine) -> None:
    org = await tenant(db)
    async with fake_n8n(owner_engine) as n8n:
        qualified = await add_workflow(
            db, org.org_id, n8n.url("/webhook/q"), trigger="status_changed",
            conditions={"statuses": ["qualified"], "tags_any": ["vip"]}, name="Qualified VIP",
        )  # fmt: skip
        noted = await add_workflow(db, org.org_id, n8n.url("/webhook/n"), trigger="note_added", name="Notes")
        lead_id = await add_lead(db, org.org_id, tags=["vip"])
        other_id = await add_lead(db, org.org_id, email="bob@acme.test")
        async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
            async with db.uow(org.org_id) as session:
                await change_status(
                    session, org_id=org.org_id, lead_id=lead_id, status="contacted", actor_id=None
                )
            async with db.uow(org.org_id) as session:
                await change_status(
                    session, org_id=org.org_id, lead_id=lead_id, status="qualified", actor_id=None
                )
                await change_status(
                    session, org_id=org.org_id, lead_id=other_id, status="qualified", actor_id=None
                )
            async with db.uow(org.org_id) as session:
                await add_note(
                    session, org_id=org.org_id, lead_id=lead_id, author_id=None,
                    content="secret plans", mentioned=[], is_private=True,
                )  # fmt: skip
            await _settle(dispatcher)
    events = sorted((r.json["workflow"]["id"], r.json["event"], r.json["lead"]["id"]) for r in n8n.received)
    assert events == sorted([(qualified, "lead.status_changed", lead_id), (noted, "note.added", lead_id)])
    status_payload = next(r.json for r in n8n.received if r.json["event"] == "lead.status_changed")
    assert status_payload["changes"]["status"] == {"from": "contacted", "to": "qualified"}
    note_payload = next(r.json for r in n8n.received if r.json["event"] == "note.added")
    assert "content" not in note_payload["changes"]["note"]


async def test_rolled_back_change_triggers_nothing(db: Database, owner_engine: AsyncEngine) -> None:
    org = await tenant(db)
    async with fake_n8n(owner_engine) as n8n:
        await add_workflow(db, org.org_id, n8n.url())
        async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
            with pytest.raises(RuntimeError):
                await _create_then_fail(db, org.org_id)
            await _settle(dispatcher)
    assert n8n.received == []
    assert await executions(owner_engine, org.org_id) == []


async def _create_then_fail(db: Database, org_id: int) -> None:
    async with db.uow(org_id) as session:
        await create_lead(session, org_id=org_id, data=LeadCreate(email="x@acme.test"))
        raise RuntimeError("boom")


async def test_sweeper_sends_a_crash_leftover_exactly_once_with_two_sweepers(
    db: Database, owner_engine: AsyncEngine
) -> None:
    org = await tenant(db)
    async with fake_n8n(owner_engine) as n8n:
        await add_workflow(db, org.org_id, n8n.url())
        # "crash": the lead and its execution committed, no dispatcher ran (and a stale lease from a dead one)
        await add_lead(db, org.org_id)
        await add_lead(db, org.org_id, email="bob@acme.test")
        async with owner_engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE workflow_executions SET lease_expires_at = now() - interval '1 minute' "
                    "WHERE organization_id = :o AND lead_id = (SELECT min(lead_id) FROM workflow_executions "
                    "WHERE organization_id = :o)"
                ),
                {"o": org.org_id},
            )
        assert [r["status"] for r in await executions(owner_engine, org.org_id)] == ["pending", "pending"]
        async with (
            running(db, BOX, retry=FAST, sweep_every=None) as one,
            running(db, BOX, retry=FAST, sweep_every=None) as two,
        ):
            counts = await asyncio.gather(one.sweep_once(), two.sweep_once(), one.sweep_once())
            assert await one.sweep_once() == 0
    assert sum(counts) == 2
    assert sorted(int(r.headers["X-LMA-Execution-Id"]) for r in n8n.received) == [
        r["id"] for r in await executions(owner_engine, org.org_id)
    ]
    assert [r["status"] for r in await executions(owner_engine, org.org_id)] == ["running", "running"]


async def test_live_lease_is_not_swept(db: Database, owner_engine: AsyncEngine) -> None:
    org = await tenant(db)
    async with fake_n8n(owner_engine) as n8n:
        await add_workflow(db, org.org_id, n8n.url())
        await add_lead(db, org.org_id)
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("UPDATE workflow_executions SET lease_expires_at = now() + interval '1 minute'")
            )
        async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
            assert await dispatcher.sweep_once() == 0
    assert n8n.received == []


async def test_tenancy_org_b_sees_nothing_of_org_a(db: Database, owner_engine: AsyncEngine) -> None:
    a = await tenant(db)
    b = await tenant(db)
    async with fake_n8n(owner_engine) as n8n:
        workflow_id = await add_workflow(db, a.org_id, n8n.url())
        await add_lead(db, a.org_id)
    async with db.uow(b.org_id) as session:
        assert await workflows.list_workflows(session, org_id=b.org_id) == []
        with pytest.raises(Exception, match="not found"):
            await workflows.get_workflow(session, org_id=b.org_id, workflow_id=workflow_id)
        count = (await session.execute(text("SELECT count(*) FROM workflow_executions"))).scalar_one()
        assert count == 0
        assert await workflows.claim_due(session, org_id=b.org_id, lease_seconds=5) == []
    async with db.uow(a.org_id) as session:
        [view] = await workflows.list_workflows(session, org_id=a.org_id)
        assert view.id == workflow_id
        assert [e.status for e in view.last_executions] == ["pending"]


async def test_private_address_refused_by_resolver_at_connect(
    db: Database, owner_engine: AsyncEngine
) -> None:
    """A name that resolved to a public address at creation and to loopback at send (rebinding): refused."""
    org = await tenant(db, self_hosted=False)
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response()

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        port = server.port
        async with owner_engine.begin() as conn:  # stored as if it had passed the check
            await conn.execute(
                text(
                    "INSERT INTO workflows (organization_id, n8n_workflow_id, name, trigger_type, webhook_url, "
                    "configuration) VALUES (:o, 'rebind', 'rebind', 'lead_created', :u, "
                    "jsonb_build_object('integration_id', CAST(:i AS integer)))"
                ),
                {"o": org.org_id, "u": f"http://localhost:{port}/webhook/x", "i": org.integration_id},
            )
        async with running(db, BOX, retry=FAST, sweep_every=None) as dispatcher:
            await add_lead(db, org.org_id)
            await _settle(dispatcher)
    finally:
        await server.close()
    assert hits == []
    rows = await executions(owner_engine, org.org_id)
    assert [(r["status"], r["retry_count"]) for r in rows] == [("error", 0)]
    assert "localhost resolves to" in rows[0]["error_message"]
