"""`/lead workflows`, `/lead workflows run` and `/lead admin integrations` end to end: signed requests, real
PostgreSQL, the web app's own dispatcher posting to an n8n stand-in on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.slack.blocks.workflows import integrations_admin, workflows_list
from handlers.slack.grammar import AdminIntegrations, RunWorkflow, UsageError, Workflows, parse, usage_lines
from lma_bot.db import Database
from tests.conftest import ScratchDatabase, Servers
from tests.slack_env import SlackEnv, slack_env
from tests.snapshot import assert_snapshot
from tests.webhook_env import KEYS, new_integration
from tests.workflow_env import add_lead, add_workflow, executions, fake_n8n


@pytest.fixture
async def env(
    db: Database, test_database: ScratchDatabase, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SlackEnv]:
    monkeypatch.setenv("LMA_ENCRYPTION_KEYS", KEYS)
    async with slack_env(db, test_database.owner_url, servers.redis_url) as environment:
        await new_integration(db, environment.org_id, "n8n", allow_private_targets="true")
        yield environment


def _text(body: dict[str, object]) -> str:
    return json.dumps(body, ensure_ascii=False)


# ---------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workflows", Workflows()),
        ("Workflows run 7 ann@acme.test", RunWorkflow(7, "ann@acme.test")),
        ("workflows run #7 42", RunWorkflow(7, "42")),
        ("admin integrations", AdminIntegrations()),
    ],
)
def test_parses(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "subcommand", "problem"),
    [
        ("workflows go", "workflows", "unknown workflows action `go`"),
        ("workflows run", "workflows", "give the workflow's number and one lead"),
        ("workflows run 7", "workflows", "give the workflow's number and one lead"),
        ("workflows run x 42", "workflows", "`x` is not a workflow number"),
        ("workflows run 7 42 43", "workflows", "give the workflow's number and one lead"),
        ("admin users", "admin", "unknown admin setting `users`"),
    ],
)
def test_bad_input_names_the_problem(text: str, subcommand: str, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert caught.value.subcommand == subcommand
    assert caught.value.problem.startswith(problem)


def test_help_is_role_aware() -> None:
    rep, manager, admin = usage_lines("rep"), usage_lines("manager"), usage_lines("admin")
    assert "/lead workflows" in rep
    assert not any("run <workflow" in line or "admin" in line for line in rep)
    assert any("run <workflow id>" in line for line in manager)
    assert not any("/lead admin" in line for line in manager)
    assert any(line.startswith("/lead admin [integrations") for line in admin)


# ---------------------------------------------------------------- end to end


async def test_bad_arguments_answer_with_the_usage_line(env: SlackEnv) -> None:
    status, body = await env.command("workflows run nope")
    assert status == 200
    assert "Usage: `/lead workflows [run <workflow id> <id|email>]`" in body


async def test_list_shows_workflows_and_last_executions(
    env: SlackEnv, db: Database, owner_engine: AsyncEngine
) -> None:
    async with fake_n8n(owner_engine) as n8n:
        workflow_id = await add_workflow(db, env.org_id, n8n.url(), conditions={"tags_any": ["vip"]})
        await add_lead(db, env.org_id, tags=["vip"])
        await env.command("workflows")
        reply = await env.reply()
    shown = _text(reply)
    assert reply["response_type"] == "ephemeral"
    assert f"`{workflow_id}` Welcome sequence" in shown
    assert "when a lead is created" in shown
    assert "lead #" in shown
    assert "Run one by hand" not in shown  # reps can't


async def test_manager_runs_a_workflow_by_hand_and_gets_the_result(
    env: SlackEnv, db: Database, owner_engine: AsyncEngine
) -> None:
    async with fake_n8n(owner_engine) as n8n:
        workflow_id = await add_workflow(db, env.org_id, n8n.url(), trigger="manual", name="Enrich")
        lead_id = await add_lead(db, env.org_id)
        await env.command(f"workflows run {workflow_id} ann@acme.test", user="U0MGR")
        first = _text(await env.reply(1))
        second = _text(await env.reply(2, timeout=10))
    rows = await executions(owner_engine, env.org_id)
    assert len(rows) == 1
    execution_id = rows[0]["id"]
    assert f"Execution `#{execution_id}`" in first
    assert "the result follows" in first
    assert "n8n accepted it (HTTP 200)" in second
    assert (rows[0]["lead_id"], rows[0]["trigger_event"], rows[0]["status"]) == (lead_id, "manual", "running")
    assert len(n8n.received) == 1
    payload = n8n.received[0].json
    assert payload["event"] == "manual"
    assert payload["actor"]["slack_user_id"] == "U0MGR"
    assert payload["execution_id"] == execution_id


async def test_rep_may_not_run_workflows(env: SlackEnv, db: Database, owner_engine: AsyncEngine) -> None:
    async with fake_n8n(owner_engine) as n8n:
        workflow_id = await add_workflow(db, env.org_id, n8n.url(), trigger="manual")
        await add_lead(db, env.org_id)
        await env.command(f"workflows run {workflow_id} ann@acme.test", user="U0REP")
        reply = _text(await env.reply())
    assert "Only managers and admins run workflows" in reply
    assert await executions(owner_engine, env.org_id) == []


async def test_run_unknown_workflow_or_lead(env: SlackEnv, db: Database, owner_engine: AsyncEngine) -> None:
    await add_lead(db, env.org_id)
    await env.command("workflows run 999999 ann@acme.test", user="U0MGR")
    assert "Workflow 999999 not found" in _text(await env.reply())
    await env.command("workflows run 1 nobody@acme.test", user="U0MGR")
    assert "No lead with the email nobody@acme.test" in _text(await env.reply(2))


async def test_admin_integrations_for_admins_only_and_without_secrets(
    env: SlackEnv, db: Database, owner_engine: AsyncEngine
) -> None:
    async with owner_engine.begin() as conn:
        integration_id = (
            await conn.execute(
                text("SELECT id FROM integrations WHERE organization_id = :o"), {"o": env.org_id}
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO webhook_events (organization_id, integration_id, provider, event_type, "
                "provider_event_id, status, error, payload) VALUES "
                "(:o, :i, 'n8n', 'update_lead', 'e1', 'processed', NULL, '{}'::jsonb), "
                "(:o, :i, 'n8n', 'set_status', 'e2', 'failed', 'lead 9 not found', '{}'::jsonb)"
            ),
            {"o": env.org_id, "i": integration_id},
        )
    await env.command("admin integrations", user="U0MGR")
    assert "for admins" in _text(await env.reply())
    await env.command("admin integrations", user="U0ADM")
    shown = _text(await env.reply(2))
    assert "/webhooks/n8n/…" in shown
    assert "1 failed, 1 processed" in shown
    assert "lead 9 not found" in shown
    assert "webhook_secret" not in shown


async def test_tenant_wall_other_org_sees_no_workflows(
    env: SlackEnv, db: Database, owner_engine: AsyncEngine
) -> None:
    from tests.workflow_env import tenant

    other = await tenant(db)
    async with fake_n8n(owner_engine) as n8n:
        await add_workflow(db, other.org_id, n8n.url(), name="Other org's flow")
        await env.command("workflows")
        shown = _text(await env.reply())
    assert "Other org's flow" not in shown
    assert "No workflows yet" in shown


# ---------------------------------------------------------------- builders


def test_builders_snapshots() -> None:
    import datetime as dt

    from lma_bot.integrations.overview import FailureView, IntegrationOverview
    from lma_bot.workflows.service import ExecutionView, WorkflowView

    when = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)
    execution = ExecutionView(
        id=12, workflow_id=3, status="error", trigger_event="lead.created", lead_id=42, lead_name="Ann <Lee>",
        retry_count=2, response_status=500, error_message="HTTP 500: boom", started_at=when, finished_at=when,
        next_attempt_at=None,
    )  # fmt: skip
    view = WorkflowView(
        id=3, name="Welcome", trigger="status_changed", conditions={"statuses": ["qualified"]},
        url_host="n8n.acme.test", n8n_workflow_id="welcome", is_active=True, created_at=when,
        last_executions=[execution],
    )  # fmt: skip
    assert_snapshot("workflows_list", workflows_list([view], can_run=True))
    assert_snapshot("workflows_list_empty", workflows_list([], can_run=False))
    overview = IntegrationOverview(
        id=1, provider="n8n", display_name="n8n", status="active",
        webhook_route="https://lma.example.test/webhooks/n8n/…", allow_private_targets=False,
        last_delivery_at=when, counts={"processed": 4, "failed": 1},
        failures=[FailureView(event_id=9, event_type="set_status", received_at=when, error="lead 9 not found")],
    )  # fmt: skip
    assert_snapshot("integrations_admin", integrations_admin([overview]))
