"""Reminders in Slack, end to end over loopback: the Remind form, the DM's Done / Snooze buttons, cancel,
and reading `<when>` off the front of `/lead remind <lead> <when> [message]`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from handlers.slack.blocks.reminders import DueItem, reminders_dm, reminders_text, tail_id
from handlers.slack.ids import LeadRef, ReminderRef
from handlers.slack.reminders import split_when
from lma_bot.db import Database
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.models import Reminder, User
from lma_bot.redis import RedisKeys, create_redis
from lma_bot.reminders import service
from lma_bot.reminders.queue import DueQueue, Member
from lma_bot.reminders.when import WhenError
from tests.conftest import ScratchDatabase, Servers
from tests.fakes.slack_requests import block_action, plain_text_value, view_submission
from tests.slack_env import TOKEN, SlackEnv, slack_env

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("words", "when", "message"),
    [
        ("tomorrow 9am call back", dt.datetime(2026, 11, 26, 9, 0), "call back"),
        ("in 2h", dt.datetime(2026, 11, 25, 12, 0), None),
        ("in 30 minutes ask about budget", dt.datetime(2026, 11, 25, 10, 30), "ask about budget"),
        ("fri 14:00 send the proposal", dt.datetime(2026, 11, 27, 14, 0), "send the proposal"),
        ("next monday", dt.datetime(2026, 11, 30, 9, 0), None),
        ("2026-12-01 09:30 renewal", dt.datetime(2026, 12, 1, 9, 30), "renewal"),
        ("tomorrow ping them", dt.datetime(2026, 11, 26, 9, 0), "ping them"),
    ],
)
def test_split_when_reads_the_longest_time_off_the_front(
    words: str, when: dt.datetime, message: str | None
) -> None:
    due, rest = split_when(words.split(), now=NOW, tz="UTC")
    assert due.at == when.replace(tzinfo=dt.UTC)
    assert rest == message


def test_split_when_prefers_the_telling_error() -> None:
    with pytest.raises(WhenError, match="has already passed"):
        split_when(["2026-11-01", "09:00", "call"], now=NOW, tz="UTC")
    with pytest.raises(WhenError, match="I can't read `someday` as a time"):
        split_when(["someday", "call"], now=NOW, tz="UTC")


@pytest.fixture
async def env(db: Database, test_database: ScratchDatabase, servers: Servers) -> AsyncIterator[SlackEnv]:
    async with slack_env(db, test_database.owner_url, servers.redis_url) as environment:
        yield environment


async def _lead(env: SlackEnv, db: Database, *, owner: str | None = "U0REP") -> int:
    async with db.uow(env.org_id) as session:
        lead = await create_lead(
            session,
            org_id=env.org_id,
            actor_id=env.users["U0REP"],
            data=LeadCreate(
                email="jo@prospect.test", first_name="Jo", assigned_to_id=env.users[owner] if owner else None
            ),
        )
        return lead.id


async def _reminders(db: Database, org: int) -> list[Reminder]:
    async with db.uow(org) as session:
        return list((await session.execute(select(Reminder).order_by(Reminder.id))).scalars())


def _queue(env: SlackEnv) -> DueQueue:
    return DueQueue(create_redis(env.settings.redis_url or ""), RedisKeys(env.settings.redis_prefix))


async def test_remind_button_opens_a_form_and_a_future_time_sets_a_queued_reminder(
    env: SlackEnv, db: Database
) -> None:
    lead_id = await _lead(env, db)
    click = block_action(
        "lead-remind",
        LeadRef(lead_id=lead_id).dumps(),
        user_id="U0MGR",
        response_url=env.fake.response_url("a"),
    )
    assert (await env.client.action(click))[0] == 200
    [opened] = await env.fake.wait_for("views.open")
    view = opened.params["view"]
    assert view["callback_id"] == "lead-remind"
    picker = view["blocks"][1]["element"]
    assert picker["type"] == "datetimepicker"

    past = int((dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).timestamp())
    values = {
        "when": {"when": {"type": "datetimepicker", "selected_date_time": past}},
        "message": {"message": plain_text_value("call")},
    }
    status, body = await env.client.view(
        view_submission(
            "lead-remind", values, private_metadata=view["private_metadata"], user_id="U0MGR", view_id="V1"
        )
    )
    assert status == 200
    assert json.loads(body) == {
        "response_action": "errors",
        "errors": {"when": "that time has already passed"},
    }
    assert await _reminders(db, env.org_id) == []

    due = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    values["when"]["when"]["selected_date_time"] = int(due.timestamp())
    status, body = await env.client.view(
        view_submission(
            "lead-remind", values, private_metadata=view["private_metadata"], user_id="U0MGR", view_id="V2"
        )
    )
    assert (status, body) == (200, "")
    [reminder] = await _reminders(db, env.org_id)
    assert reminder.due_at == due
    assert reminder.user_id == env.users["U0REP"]  # the lead's owner is reminded
    assert reminder.created_by == env.users["U0MGR"]
    assert reminder.message == "call"
    queue = _queue(env)
    try:
        assert (
            await queue.redis.zscore(queue.queue_key, str(Member(env.org_id, reminder.id))) == due.timestamp()
        )
    finally:
        await queue.redis.aclose()
    [confirm] = await env.fake.wait_for("chat.postMessage")
    assert confirm.params["channel"] == "U0MGR"
    assert "<@U0REP>" in confirm.params["text"]


async def _sent_reminder(env: SlackEnv, db: Database) -> int:
    lead_id = await _lead(env, db)
    async with db.uow(env.org_id) as session:
        r = await service.create_reminder(
            session,
            org_id=env.org_id,
            lead_id=lead_id,
            user_id=env.users["U0REP"],
            created_by=env.users["U0REP"],
            due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
            message="call",
        )
        r.status = "sent"
        return r.id


async def _click(env: SlackEnv, action: str, reminder_id: int, user: str = "U0REP") -> dict[str, object]:
    before = len(env.fake.response_posts)
    click = block_action(
        action,
        ReminderRef(reminder_id=reminder_id).dumps(),
        user_id=user,
        response_url=env.fake.response_url("r"),
    )
    assert (await env.client.action(click))[0] == 200
    return await env.reply(before + 1)


async def test_snooze_an_hour_requeues_and_replaces_the_buttons(env: SlackEnv, db: Database) -> None:
    rid = await _sent_reminder(env, db)
    started = dt.datetime.now(dt.UTC)
    reply = await _click(env, "reminder-snooze-hour", rid)
    assert reply["replace_original"] is True
    assert "Snoozed until" in json.dumps(reply)
    assert all(b["type"] != "actions" for b in reply["blocks"])  # type: ignore[union-attr,index]
    [r] = await _reminders(db, env.org_id)
    assert r.status == "scheduled"
    assert started + dt.timedelta(minutes=59) < r.due_at < started + dt.timedelta(minutes=61)
    queue = _queue(env)
    try:
        assert await queue.redis.zscore(queue.queue_key, str(Member(env.org_id, rid))) == r.due_at.timestamp()
    finally:
        await queue.redis.aclose()


async def test_tomorrow_is_nine_in_the_users_timezone(env: SlackEnv, db: Database) -> None:
    async with db.uow(env.org_id) as session:
        user = await session.get(User, (env.org_id, env.users["U0REP"]))
        assert user is not None
        user.timezone = "America/New_York"
    rid = await _sent_reminder(env, db)
    await _click(env, "reminder-snooze-tomorrow", rid)
    [r] = await _reminders(db, env.org_id)
    local = r.due_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 0)
    assert local.date() == dt.datetime.now(ZoneInfo("America/New_York")).date() + dt.timedelta(days=1)


async def _coalesced_dm(env: SlackEnv, db: Database, count: int) -> tuple[list[int], dict[str, Any]]:
    """``count`` reminders delivered together as one DM (as the scheduler builds and marks it): ids and the
    message as Slack holds it."""
    lead_id = await _lead(env, db)
    due = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    async with db.uow(env.org_id) as session:
        made = [
            await service.create_reminder(
                session,
                org_id=env.org_id,
                lead_id=lead_id,
                user_id=env.users["U0REP"],
                created_by=env.users["U0REP"],
                due_at=due,
                message=f"item {i}",
            )
            for i in range(count)
        ]
    items = [DueItem(r.id, lead_id, "Jo", r.message, due, "U0REP", "Rita Rep", True) for r in made]
    slack = AsyncWebClient(token=TOKEN, base_url=env.fake.api_url)
    posted = await slack.chat_postMessage(
        channel="U0REP", text=reminders_text(items), blocks=reminders_dm(items)
    )
    async with db.uow(env.org_id) as session:
        for r in await service.get_reminders(session, org_id=env.org_id, reminder_ids=[r.id for r in made]):
            r.status, r.slack_channel, r.slack_ts = "sent", posted["channel"], posted["ts"]
    return [r.id for r in made], dict(posted["message"])


async def _click_row(env: SlackEnv, action: str, reminder_id: int, message: dict[str, Any]) -> dict[str, Any]:
    """Click a row's button in ``message`` (as Slack sends it: the message and its DM channel); returns
    the chat.update that follows."""
    before = len(env.fake.calls_to("chat.update"))
    click = block_action(
        action,
        ReminderRef(reminder_id=reminder_id).dumps(),
        user_id="U0REP",
        channel_id=str(message.get("channel") or "D0REP"),
        message=message,
        block_id=tail_id(reminder_id),
        response_url=env.fake.response_url("row"),
    )
    assert (await env.client.action(click))[0] == 200
    updates = await env.fake.wait_for("chat.update", count=before + 1)
    return updates[-1].params


async def test_done_on_one_row_of_a_coalesced_dm_closes_only_it_and_rewrites_only_its_row(
    env: SlackEnv, db: Database
) -> None:
    ids, message = await _coalesced_dm(env, db, 3)
    message["channel"] = "D0REP"
    update = await _click_row(env, "reminder-done", ids[1], message)
    assert (update["channel"], update["ts"]) == ("D0REP", message["ts"])  # the same message
    original, rewritten = message["blocks"], update["blocks"]
    assert len(rewritten) == len(original)
    changed = [i for i, (a, b) in enumerate(zip(original, rewritten, strict=True)) if a != b]
    [tail] = [i for i, b in enumerate(original) if b.get("block_id") == tail_id(ids[1])]
    assert changed == [tail]  # only the clicked reminder's controls
    assert rewritten[tail]["type"] == "context"
    assert ":white_check_mark: Done" in json.dumps(rewritten[tail])
    rows = {r.id: r for r in await _reminders(db, env.org_id)}
    assert rows[ids[1]].done_at is not None
    assert [rows[i].done_at for i in (ids[0], ids[2])] == [None, None]
    assert {r.status for r in rows.values()} == {"sent"}
    assert env.fake.response_posts == []  # the message is updated in place, not replaced via response_url

    # a second click, from the same (now stale) copy of the message: both outcomes show
    update = await _click_row(env, "reminder-snooze-hour", ids[0], message)
    outcome = {b["block_id"]: json.dumps(b) for b in update["blocks"] if b.get("block_id")}
    assert "Snoozed until" in outcome[tail_id(ids[0])]
    assert ":white_check_mark: Done" in outcome[tail_id(ids[1])]
    assert '"type": "actions"' in outcome[tail_id(ids[2])]  # the third still has its buttons
    rows = {r.id: r for r in await _reminders(db, env.org_id)}
    assert (rows[ids[0]].status, rows[ids[2]].status, rows[ids[2]].done_at) == ("scheduled", "sent", None)


async def test_done_closes_it_and_a_later_snooze_is_refused(env: SlackEnv, db: Database) -> None:
    rid = await _sent_reminder(env, db)
    reply = await _click(env, "reminder-done", rid)
    assert ":white_check_mark: Done" in json.dumps(reply)
    [r] = await _reminders(db, env.org_id)
    assert r.done_at is not None
    assert r.status == "sent"
    refused = await _click(env, "reminder-snooze-hour", rid)
    assert refused["response_type"] == "ephemeral"
    assert f"Reminder {rid} is done" in str(refused["text"])


async def test_someone_else_cannot_cancel_my_reminder_but_a_manager_can(env: SlackEnv, db: Database) -> None:
    lead_id = await _lead(env, db)
    async with db.uow(env.org_id) as session:
        r = await service.create_reminder(
            session,
            org_id=env.org_id,
            lead_id=lead_id,
            user_id=env.users["U0REP"],
            created_by=env.users["U0REP"],
            due_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
        )
        rid = r.id
    refused = await _click(env, "reminder-cancel", rid, user="U0REP2")
    assert "Only the person reminded, its creator or a manager can cancel" in str(refused["text"])
    assert (await _reminders(db, env.org_id))[0].status == "scheduled"
    done = await _click(env, "reminder-cancel", rid, user="U0MGR")
    assert f"Cancelled reminder {rid}" in str(done["text"])
    assert (await _reminders(db, env.org_id))[0].status == "cancelled"


async def _user_tz(db: Database, org: int, user_id: int) -> str:
    async with db.uow(org) as session:
        user = await session.get(User, (org, user_id))
        assert user is not None
        return user.timezone


async def test_remind_command_sets_a_reminder_in_my_timezone_and_lists_and_cancels_it(
    env: SlackEnv, db: Database
) -> None:
    lead_id = await _lead(env, db)
    status, body = await env.command(f"remind {lead_id} tomorrow 9am call back about pricing")
    assert (status, body) == (200, "")
    reply = await env.reply()
    assert reply["response_type"] == "ephemeral"
    assert "I'll remind you about" in str(reply["text"])
    [r] = await _reminders(db, env.org_id)
    tz = ZoneInfo(await _user_tz(db, env.org_id, env.users["U0REP"]))
    local = r.due_at.astimezone(tz)
    assert (local.hour, local.minute) == (9, 0)
    assert local.date() == dt.datetime.now(tz).date() + dt.timedelta(days=1)
    assert r.message == "call back about pricing"
    assert r.explicit_time is True

    await env.command(f"show {lead_id}")
    card = json.dumps(await env.reply(2))
    assert f"Next reminder: <!date^{int(r.due_at.timestamp())}^" in card

    await env.command("remind list")
    listed = await env.reply(3)
    assert "call back about pricing" in json.dumps(listed)
    cancel = [
        b["accessory"]
        for b in listed["blocks"]
        if (b.get("accessory") or {}).get("action_id") == "reminder-cancel"
    ]  # type: ignore[union-attr]
    assert [ReminderRef.model_validate_json(c["value"]).reminder_id for c in cancel] == [r.id]

    await env.command(f"remind cancel {r.id}")
    assert f"Cancelled reminder {r.id}" in str((await env.reply(4))["text"])
    assert (await _reminders(db, env.org_id))[0].status == "cancelled"
    await env.command("remind list")
    assert "You have no pending reminders" in json.dumps(await env.reply(5))
    await env.command(f"show {lead_id}")
    assert "Next reminder: _none set_" in json.dumps(await env.reply(6))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("remind {lead} whenever", "I can't read `whenever` as a time"),
        ("remind {lead} 2020-01-01 09:00 too late", "has already passed"),
        ("remind 999999 in 2h", "not found"),
    ],
)
async def test_remind_command_bad_times_answer_with_examples_and_write_nothing(
    env: SlackEnv, db: Database, text: str, expected: str
) -> None:
    lead_id = await _lead(env, db)
    await env.command(text.format(lead=lead_id))
    reply = await env.reply()
    assert reply["response_type"] == "ephemeral"
    assert expected in str(reply["text"])
    if "999999" not in text:
        assert "`tomorrow 9am`" in str(reply["text"])
    assert await _reminders(db, env.org_id) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("remind", "give the lead and when"),
        ("remind 42", "say when"),
        ("remind cancel x", "give the number of the reminder to cancel"),
    ],
)
async def test_remind_usage_mistakes_are_answered_in_the_ack(env: SlackEnv, text: str, problem: str) -> None:
    status, body = await env.command(text)
    assert status == 200
    answer = json.loads(body)
    assert problem in answer["text"]
    assert "/lead remind <id|email> <when> [message]" in answer["text"]
