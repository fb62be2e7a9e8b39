"""Reassignment in Slack over loopback: signed requests to the real app, a fake Slack Web API recording calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update

from handlers.jobs.assignments import expire_requests, notify_nobody_eligible
from handlers.slack.ids import AssignmentRef, LeadRef
from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.models import ActivityLog, Lead, LeadAssignment
from lma_bot.users.schemas import UserCreate
from lma_bot.users.service import add_user
from tests.conftest import ScratchDatabase, Servers
from tests.fakes.slack_requests import block_action, view_submission
from tests.slack_env import TOKEN, SlackEnv, slack_env
from tests.support import new_org


@pytest.fixture
async def env(db: Database, test_database: ScratchDatabase, servers: Servers) -> AsyncIterator[SlackEnv]:
    async with slack_env(db, test_database.owner_url, servers.redis_url) as environment:
        yield environment


async def _lead(
    env: SlackEnv, db: Database, *, owner: str | None = "U0REP", email: str = "jo@prospect.test"
) -> int:
    async with db.uow(env.org_id) as session:
        lead = await create_lead(
            session,
            org_id=env.org_id,
            data=LeadCreate(email=email, first_name="Jo", assigned_to_id=env.users[owner] if owner else None),
        )
        return lead.id


async def _rows(db: Database, org: int) -> list[LeadAssignment]:
    async with db.uow(org) as session:
        return list((await session.execute(select(LeadAssignment).order_by(LeadAssignment.id))).scalars())


async def _owner(db: Database, org: int, lead_id: int) -> int | None:
    async with db.uow(org) as session:
        lead = await session.get(Lead, (org, lead_id))
        assert lead is not None
        return lead.assigned_to_id


async def _say(env: SlackEnv, text: str, user: str = "U0REP", **kw: Any) -> dict[str, Any]:
    before = len(env.fake.response_posts)
    status, body = await env.command(text, user=user, **kw)
    assert status == 200
    if body:  # answered by the ack (usage mistakes)
        return dict(json.loads(body))
    return dict(await env.reply(before + 1))


async def _request(env: SlackEnv, db: Database, lead_id: int) -> LeadAssignment:
    reply = await _say(env, f"assign {lead_id} <@U0REP2|ray> going on vacation")
    assert "waiting for a manager" in json.dumps(reply), reply
    [row] = [r for r in await _rows(db, env.org_id) if r.status == "pending"]
    return row


def _click(
    env: SlackEnv, action: str, assignment_id: int, *, user: str, n: int = 0, **kw: Any
) -> dict[str, Any]:
    return block_action(
        action,
        AssignmentRef(assignment_id=assignment_id).dumps(),
        user_id=user,
        response_url=env.fake.response_url(f"click{n}"),
        **kw,
    )


async def _set_channel(env: SlackEnv) -> None:
    reply = await _say(env, "admin approvals-channel <#C0APPROVE|approvals>", user="U0ADM")
    assert "C0APPROVE" in json.dumps(reply)


async def test_rep_request_goes_to_the_managers_by_dm_until_a_channel_is_set(
    env: SlackEnv, db: Database
) -> None:
    lead_id = await _lead(env, db)
    row = await _request(env, db, lead_id)
    assert (row.requested_by, row.assigned_to, row.assigned_from) == (
        env.users["U0REP"],
        env.users["U0REP2"],
        env.users["U0REP"],
    )
    assert row.reason == "going on vacation"
    assert row.expires_at is not None
    assert (
        dt.timedelta(hours=23, minutes=59)
        < row.expires_at - row.assigned_at
        <= dt.timedelta(hours=24, minutes=1)
    )
    opened = {c.params["users"] for c in env.fake.calls_to("conversations.open")}
    assert opened == {"U0MGR", "U0ADM"}
    posts = [c for c in env.fake.calls_to("chat.postMessage") if c.params["channel"].startswith("D")]
    assert len(posts) == 2
    assert any(b.get("type") == "actions" for b in posts[0].params["blocks"])
    assert len(row.approval_messages) == 2
    assert await _owner(db, env.org_id, lead_id) == env.users["U0REP"]  # nothing changes until a decision


async def test_twenty_concurrent_clicks_make_exactly_one_decision(env: SlackEnv, db: Database) -> None:
    await _set_channel(env)
    lead_id = await _lead(env, db)
    row = await _request(env, db, lead_id)
    [posted] = [c for c in env.fake.calls_to("chat.postMessage") if c.params["channel"] == "C0APPROVE"]
    message_ts = posted.response["ts"]
    env.fake.reset()
    clicks = [
        _click(
            env,
            "lead-reassign-approve" if i % 2 else "lead-reassign-reject",
            row.id,
            user="U0MGR" if i % 3 else "U0ADM",
            n=i,
            channel_id="C0APPROVE",
            container={"type": "message", "message_ts": message_ts, "channel_id": "C0APPROVE"},
        )
        for i in range(20)
    ]
    results = await asyncio.gather(*(env.client.action(c) for c in clicks))
    assert all(status == 200 for status, _ in results)
    await env.fake.wait_for_response_posts(19, timeout=15)
    [updated] = await env.fake.wait_for("chat.update")
    await asyncio.sleep(0.5)
    [decided] = await _rows(db, env.org_id)
    assert decided.status in ("approved", "rejected")
    assert len(env.fake.calls_to("chat.update")) == 1
    static = updated.params["blocks"]
    assert all(b["type"] != "actions" for b in static)
    assert f"{decided.status.capitalize()} by <@" in json.dumps(static)
    threads = [c for c in env.fake.calls_to("chat.postMessage") if c.params.get("thread_ts") == message_ts]
    assert len(threads) == 1
    refusals = [json.dumps(p.body) for p in env.fake.response_posts]
    assert len(refusals) == 19
    assert all("was already" in r for r in refusals)
    dms = sorted(c.params["users"] for c in env.fake.calls_to("conversations.open"))
    owner = await _owner(db, env.org_id, lead_id)
    async with db.uow(env.org_id) as session:
        changes = (
            await session.execute(select(ActivityLog).where(ActivityLog.activity_type == "lead.assigned"))
        ).scalars()
        n_changes = len(list(changes))
    if decided.status == "approved":
        assert owner == env.users["U0REP2"]
        assert n_changes == 1
        assert dms == ["U0REP", "U0REP2"]  # requester (= old owner) and new owner, once each
    else:
        assert owner == env.users["U0REP"]
        assert n_changes == 0
        assert dms == ["U0REP", "U0REP2"]

    # A replay of the winning payload is refused too.
    before = len(env.fake.response_posts)
    await env.client.action(clicks[0])
    replay = await env.reply(before + 1)
    assert "was already" in json.dumps(replay)
    assert len(env.fake.calls_to("chat.update")) == 1


async def test_a_rep_or_another_workspaces_manager_cannot_decide(env: SlackEnv, db: Database) -> None:
    lead_id = await _lead(env, db)
    row = await _request(env, db, lead_id)
    before = len(env.fake.response_posts)
    await env.client.action(_click(env, "lead-reassign-approve", row.id, user="U0REP2"))
    refused = json.dumps(await env.reply(before + 1))
    assert "Only managers and admins" in refused

    other = await new_org(db, name="Other", slack_team_id="T0OTHER")
    async with db.uow(other) as session:
        await add_user(
            session,
            org_id=other,
            data=UserCreate(email="olga@other.test", name="Olga", role="manager", slack_user_id="U0OMGR"),  # type: ignore[arg-type]
        )
    before = len(env.fake.response_posts)
    await env.client.action(_click(env, "lead-reassign-approve", row.id, user="U0OMGR", team_id="T0OTHER"))
    refused = json.dumps(await env.reply(before + 1))
    assert "not found" in refused
    [still] = await _rows(db, env.org_id)
    assert still.status == "pending"
    assert still.decided_by is None
    assert await _owner(db, env.org_id, lead_id) == env.users["U0REP"]
    assert env.fake.calls_to("chat.update") == []


async def test_duplicate_request_points_at_the_first_and_the_requester_cancels(
    env: SlackEnv, db: Database
) -> None:
    await _set_channel(env)
    lead_id = await _lead(env, db)
    row = await _request(env, db, lead_id)
    dup = await _say(env, f"assign {lead_id} <@U0MGR>", user="U0REP2")
    assert f"pending request #{row.id}" in json.dumps(dup) or f"#{row.id}" in json.dumps(dup)
    assert len(await _rows(db, env.org_id)) == 1

    before = len(env.fake.response_posts)
    await env.client.action(_click(env, "lead-reassign-cancel", row.id, user="U0REP2"))
    assert "whoever asked" in json.dumps(await env.reply(before + 1))

    before = len(env.fake.response_posts)
    await env.client.action(_click(env, "lead-reassign-cancel", row.id, user="U0REP"))
    assert f"Cancelled request #{row.id}" in json.dumps(await env.reply(before + 1))
    [cancelled] = await _rows(db, env.org_id)
    assert cancelled.status == "cancelled"
    [updated] = await env.fake.wait_for("chat.update")
    assert "Cancelled by <@U0REP>" in json.dumps(updated.params["blocks"])
    again = await _say(env, f"assign cancel {row.id}")
    assert "already cancelled" in json.dumps(again)


async def test_manager_reassigns_at_once_and_the_card_lists_it(env: SlackEnv, db: Database) -> None:
    lead_id = await _lead(env, db)
    reply = await _say(env, f"assign {lead_id} <@U0REP2> territory", user="U0MGR")
    assert "now belongs to <@U0REP2>" in json.dumps(reply)
    assert await _owner(db, env.org_id, lead_id) == env.users["U0REP2"]
    dms = sorted(c.params["users"] for c in await env.fake.wait_for("conversations.open", 2))
    assert dms == ["U0REP", "U0REP2"]
    card = json.dumps(await _say(env, f"show {lead_id}"))
    assert "Last assignments" in card
    assert "territory" in card


async def test_reassign_button_opens_a_user_picker_and_the_form_requests(env: SlackEnv, db: Database) -> None:
    lead_id = await _lead(env, db)
    click = block_action(
        "lead-reassign",
        LeadRef(lead_id=lead_id).dumps(),
        user_id="U0REP",
        response_url=env.fake.response_url("a"),
    )
    assert (await env.client.action(click))[0] == 200
    [opened] = await env.fake.wait_for("views.open")
    view = opened.params["view"]
    assert view["callback_id"] == "lead-reassign"
    assert view["blocks"][1]["element"]["type"] == "users_select"
    values = {
        "assignee": {"assignee": {"type": "users_select", "selected_user": "U0REP2"}},
        "reason": {"reason": {"type": "plain_text_input", "value": "swap"}},
    }
    env.fake.delay("chat.postMessage", 4.0)  # a slow Slack: the form still closes at once
    started = time.monotonic()
    status, body = await env.client.view(
        view_submission(
            "lead-reassign", values, private_metadata=view["private_metadata"], user_id="U0REP", view_id="V9"
        )
    )
    assert time.monotonic() - started < 2.0
    assert (status, body) == (200, "")
    [row] = await _rows(db, env.org_id)
    assert row.status == "pending"
    assert row.reason == "swap"
    env.fake.delay("chat.postMessage", 0)
    for _ in range(150):  # the managers' DMs, then the requester's confirmation
        posts = env.fake.calls_to("chat.postMessage")
        if any(f"Request #{row.id} sent" in str(p.params.get("text")) for p in posts):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"no confirmation among {[p.params.get('text') for p in posts]}")


async def test_expiry_marks_notes_the_thread_and_tells_the_requester(env: SlackEnv, db: Database) -> None:
    await _set_channel(env)
    lead_id = await _lead(env, db)
    row = await _request(env, db, lead_id)
    env.fake.reset()
    client = AsyncWebClient(token=TOKEN, base_url=env.fake.api_url)

    async def client_for(org_id: int) -> AsyncWebClient:
        return client

    assert await expire_requests(db, client_for) == 0
    async with db.uow(env.org_id) as session:
        await session.execute(
            update(LeadAssignment)
            .where(LeadAssignment.id == row.id)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    assert await expire_requests(db, client_for) == 1
    assert await expire_requests(db, client_for) == 0
    [expired] = await _rows(db, env.org_id)
    assert expired.status == "expired"
    [updated] = env.fake.calls_to("chat.update")
    assert "Expired without a decision" in json.dumps(updated.params["blocks"])
    threads = [c for c in env.fake.calls_to("chat.postMessage") if c.params.get("thread_ts")]
    assert len(threads) == 1
    assert "Expired" in threads[0].params["text"]
    assert [c.params["users"] for c in env.fake.calls_to("conversations.open")] == ["U0REP"]


async def test_nobody_eligible_tells_the_managers_once(env: SlackEnv, db: Database) -> None:
    await _say(env, "admin assignment round_robin", user="U0ADM")
    await _say(env, "admin away <@U0REP> on", user="U0ADM")
    await _say(env, "admin away <@U0REP2|ray> on", user="U0ADM")
    await _lead(env, db, owner=None, email="a@x.io")
    await _lead(env, db, owner=None, email="b@x.io")
    env.fake.reset()
    client = AsyncWebClient(token=TOKEN, base_url=env.fake.api_url)

    async def client_for(org_id: int) -> AsyncWebClient:
        return client

    assert await notify_nobody_eligible(db, client_for) == 1
    assert await notify_nobody_eligible(db, client_for) == 0
    told = sorted(c.params["users"] for c in env.fake.calls_to("conversations.open"))
    assert told == ["U0ADM", "U0MGR"]
    assert "*2* leads are unassigned" in json.dumps(env.fake.calls_to("chat.postMessage")[0].params["blocks"])

    await _say(env, "admin away <@U0REP> off", user="U0ADM")
    new = await _lead(env, db, owner=None, email="c@x.io")
    assert await _owner(db, env.org_id, new) == env.users["U0REP"]


async def test_admin_settings_are_for_admins_and_logged(env: SlackEnv, db: Database) -> None:
    refused = await _say(env, "admin assignment round_robin", user="U0MGR")
    assert "for admins" in json.dumps(refused)
    usage = await _say(env, "admin assignment random", user="U0ADM")
    assert "Usage:" in usage["text"]
    assert "/lead admin" in usage["text"]
    usage = await _say(env, "assign 42 bob")
    assert "Usage: `/lead assign" in usage["text"]
    shown = json.dumps(await _say(env, "admin expiry 48", user="U0ADM"))
    assert "48 h" in shown
    shown = json.dumps(await _say(env, "admin capacity 5", user="U0ADM"))
    assert "5 open leads" in shown
    shown = json.dumps(await _say(env, "admin", user="U0ADM"))
    assert "Assignment settings" in shown
    async with db.uow(env.org_id) as session:
        logged = sorted(
            (
                await session.execute(
                    select(ActivityLog.activity_type).where(ActivityLog.activity_type.like("settings.%"))
                )
            ).scalars()
        )
    assert logged == ["settings.assignment_capacity", "settings.assignment_expiry"]
    help_rep = json.dumps(await _say(env, "help"))
    help_admin = json.dumps(await _say(env, "help", user="U0ADM"))
    assert "a manager approves" in help_rep
    assert "approvals-channel" not in help_rep
    assert "approvals-channel" in help_admin


async def test_app_home_shows_pending_approvals_to_managers(env: SlackEnv, db: Database) -> None:
    from tests.fakes.slack_requests import event_callback

    lead_id = await _lead(env, db)
    await _request(env, db, lead_id)
    env.fake.reset()
    home = event_callback({"type": "app_home_opened", "user": "U0MGR", "channel": "D0HOME", "tab": "home"})
    assert (await env.client.event(home))[0] == 200
    [publish] = await env.fake.wait_for("views.publish")
    shown = json.dumps(publish.params["view"])
    assert "Pending approvals (1)" in shown
    assert "lead-reassign-approve" in shown
