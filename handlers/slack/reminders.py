"""Reminders in Slack: `/lead remind`, the card's Remind form, and the Done / Snooze / Cancel buttons.

A reminder goes to the lead's owner, or to whoever set it when the lead has no owner. Times are read in the
setter's Slack timezone (:mod:`lma_bot.reminders.when`). The row is committed first, then queued in Redis;
if Redis is away at that moment the scheduler's reconcile queues it from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from redis.exceptions import RedisError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.actor import Actor, actor_for_payload, user_row
from handlers.slack.blocks.common import slack_date, user_ref
from handlers.slack.blocks.reminders import (
    reminder_list,
    reminder_settled,
    row_outcome,
    rows_in,
    with_rows_settled,
)
from handlers.slack.deps import SlackDeps
from handlers.slack.errors import answer_errors, error_text
from handlers.slack.ids import Action, Block, LeadRef, ModalContext, ReminderRef, View
from handlers.slack.replies import button_value, just_ack
from lma_bot.errors import DomainError
from lma_bot.leads.service import get_lead
from lma_bot.models import User
from lma_bot.reminders import service
from lma_bot.reminders.queue import DueQueue, Member
from lma_bot.reminders.when import DEFAULT_TIME, Due, WhenError, parse_when

log = logging.getLogger(__name__)

#: The longest `<when>` we try to read off the front of `/lead remind <lead> <when> [message]`.
MAX_WHEN_WORDS = 5


def split_when(words: list[str], *, now: dt.datetime, tz: str) -> tuple[Due, str | None]:
    """Read the longest leading run of ``words`` that is a time; the rest is the message.

    ``tomorrow 9am call back`` -> (tomorrow 09:00, "call back"). If no prefix is a time, the error of the
    most telling attempt is raised (a time that has passed beats "can't read").
    """
    best: WhenError | None = None
    for n in range(min(MAX_WHEN_WORDS, len(words)), 0, -1):
        try:
            due = parse_when(" ".join(words[:n]), now=now, tz=tz)
        except WhenError as exc:
            if best is None or best.unreadable:  # the longest telling error, else the shortest attempt's
                best = exc
            continue
        message = " ".join(words[n:]).strip() or None
        return due, message
    raise best if best is not None else WhenError("Say when")


@dataclass(frozen=True)
class SetReminder:
    reminder_id: int
    lead_id: int
    lead_name: str
    due: dt.datetime
    recipient_slack_id: str | None
    recipient_name: str
    for_self: bool


async def set_reminder(
    deps: SlackDeps, actor: Actor, lead_id: int, due: Due, message: str | None
) -> SetReminder:
    async with deps.database.uow(actor.org_id) as session:
        lead = await get_lead(session, org_id=actor.org_id, lead_id=lead_id)
        recipient_id = lead.assigned_to_id or actor.user_id
        recipient = await session.get(User, (actor.org_id, recipient_id))
        if recipient is None or not recipient.is_active:
            recipient_id, recipient = actor.user_id, await session.get(User, (actor.org_id, actor.user_id))
        reminder = await service.create_reminder(
            session,
            org_id=actor.org_id,
            lead_id=lead.id,
            user_id=recipient_id,
            created_by=actor.user_id,
            due_at=due.at,
            explicit_time=due.explicit_time,
            message=message,
        )
        result = SetReminder(
            reminder_id=reminder.id,
            lead_id=lead.id,
            lead_name=lead.display_name,
            due=due.at,
            recipient_slack_id=recipient.slack_user_id if recipient else None,
            recipient_name=recipient.name if recipient else "you",
            for_self=recipient_id == actor.user_id,
        )
    await _queue(deps, Member(actor.org_id, result.reminder_id), due.at)
    await deps.cards.invalidate(result.lead_id)  # the card shows the next reminder
    return result


async def _queue(deps: SlackDeps, member: Member, at: dt.datetime) -> None:
    try:
        await DueQueue(deps.redis, deps.keys).schedule(member, at)
    except RedisError:  # PostgreSQL has it; the scheduler's reconcile queues it
        log.warning("reminder.queue_unavailable member=%s", member)


def confirmation(done: SetReminder) -> str:
    who = "you" if done.for_self else user_ref(done.recipient_slack_id, done.recipient_name)
    return (
        f":alarm_clock: I'll remind {who} about *#{done.lead_id} {done.lead_name}* {slack_date(done.due)}. "
        "See or cancel with `/lead remind list`."
    )


async def list_text(deps: SlackDeps, actor: Actor) -> list[dict[str, Any]]:
    async with deps.database.uow(actor.org_id) as session:
        rows = await service.upcoming_for_user(session, org_id=actor.org_id, user_id=actor.user_id)
        shown = [(r.id, lead.id, lead.display_name, r.message, r.due_at, r.status) for r, lead in rows]
    return reminder_list(shown)


async def cancel(deps: SlackDeps, actor: Actor, reminder_id: int) -> str:
    async with deps.database.uow(actor.org_id) as session:
        user = await user_row(session, actor)
        reminder = await service.cancel(session, org_id=actor.org_id, reminder_id=reminder_id, actor=user)
        lead_id = reminder.lead_id
    await _forget(deps, Member(actor.org_id, reminder_id))
    await deps.cards.invalidate(lead_id)
    return f":wastebasket: Cancelled reminder {reminder_id} about lead #{lead_id}."


async def _forget(deps: SlackDeps, member: Member) -> None:
    try:
        await DueQueue(deps.redis, deps.keys).done(member)
    except RedisError:  # the scheduler finds it cancelled and drops it
        log.warning("reminder.unqueue_unavailable member=%s", member)


def tomorrow_morning(actor: Actor, now: dt.datetime) -> dt.datetime:
    zone = ZoneInfo(actor.timezone)
    day = now.astimezone(zone).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, DEFAULT_TIME, tzinfo=zone).astimezone(dt.UTC)


def remind_modal(context: ModalContext, *, lead_name: str, initial: dt.datetime) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": View.REMIND,
        "title": {"type": "plain_text", "text": "Remind me"},
        "submit": {"type": "plain_text", "text": "Set reminder"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": context.dumps(),
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"Follow up on *{lead_name}*"},
            },
            {
                "type": "input",
                "block_id": Block.WHEN,
                "label": {"type": "plain_text", "text": "When"},
                "element": {
                    "type": "datetimepicker",
                    "action_id": Block.WHEN,
                    "initial_date_time": int(initial.timestamp()),
                },
            },
            {
                "type": "input",
                "block_id": Block.MESSAGE,
                "optional": True,
                "label": {"type": "plain_text", "text": "Message"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": Block.MESSAGE,
                    "max_length": service.MAX_MESSAGE_LENGTH,
                    "placeholder": {"type": "plain_text", "text": "e.g. ask about the budget"},
                },
            },
        ],
    }


async def _rewrite_rows(deps: SlackDeps, actor: Actor, client: AsyncWebClient, body: dict[str, Any]) -> None:
    """Update a coalesced reminder DM after a click: each row's controls or outcome from its reminder's
    state (the clicked row changes; the others come out as they were). Rewrites of one message are taken
    one at a time and each reads the states after the previous one, so two quick clicks on two rows both
    show."""
    message = body.get("message") or {}
    container = body.get("container") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    ts = str(message.get("ts") or container.get("message_ts") or "")
    blocks = message.get("blocks") or []
    async with _one_at_a_time(deps, channel, ts):
        async with deps.database.uow(actor.org_id) as session:
            rows = await service.get_reminders(session, org_id=actor.org_id, reminder_ids=rows_in(blocks))
            outcomes = {
                r.id: row_outcome(
                    status=r.status, done_at=r.done_at, due_at=r.due_at, slack_ts=r.slack_ts, message_ts=ts
                )
                for r in rows
            }
        await client.chat_update(
            channel=channel,
            ts=ts,
            text=str(message.get("text") or ""),
            blocks=with_rows_settled(blocks, outcomes),
        )


_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@contextlib.asynccontextmanager
async def _one_at_a_time(deps: SlackDeps, channel: str, ts: str) -> AsyncIterator[None]:
    """A short Redis lock on one message (waits up to ~5 s; without Redis, goes ahead unlocked)."""
    key, token, held = deps.keys.slack_message_lock(channel, ts), uuid.uuid4().hex, False
    try:
        for _ in range(100):
            held = bool(await deps.redis.set(key, token, nx=True, px=5000))
            if held:
                break
            await asyncio.sleep(0.05)
    except RedisError:
        log.warning("reminder.message_lock_unavailable channel=%s", channel)
    try:
        yield
    finally:
        if held:
            with contextlib.suppress(RedisError):
                await deps.redis.eval(_RELEASE, 1, key, token)


def _ref(body: dict[str, Any]) -> ReminderRef:
    return button_value(ReminderRef, body)


def register(app: AsyncApp, deps: SlackDeps) -> None:

    async def actor_for(body: dict[str, Any], client: AsyncWebClient) -> Actor:
        return await actor_for_payload(deps, client, body)

    async def settle(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        action = Action(body["actions"][0]["action_id"])
        async with answer_errors(respond, what="reminder_button"):
            ref = _ref(body)
            actor = await actor_for(body, client)
            now = dt.datetime.now(dt.UTC)
            async with deps.database.uow(actor.org_id) as session:
                user = await user_row(session, actor)
                if action == Action.REMINDER_DONE:
                    reminder = await service.mark_done(
                        session, org_id=actor.org_id, reminder_id=ref.reminder_id, actor=user
                    )
                    outcome = f":white_check_mark: Done ({user_ref(actor.slack_user_id, actor.name)}, {slack_date(now)})"
                else:
                    until = (
                        now + dt.timedelta(hours=1)
                        if action == Action.REMINDER_SNOOZE_HOUR
                        else tomorrow_morning(actor, now)
                    )
                    reminder = await service.snooze(
                        session, org_id=actor.org_id, reminder_id=ref.reminder_id, actor=user, until=until
                    )
                    outcome = f":zzz: Snoozed until {slack_date(until)}"
                lead = await get_lead(session, org_id=actor.org_id, lead_id=reminder.lead_id)
                settled = reminder_settled(
                    lead_id=lead.id, lead_name=lead.display_name, message=reminder.message, outcome=outcome
                )
                due, status = reminder.due_at, reminder.status
            member = Member(actor.org_id, ref.reminder_id)
            await deps.cards.invalidate(lead.id)
            if status == "scheduled":
                await _queue(deps, member, due)
            else:
                await _forget(deps, member)
            message = body.get("message") or {}
            if rows_in(message.get("blocks") or []):  # a coalesced DM: rewrite this row only
                await _rewrite_rows(deps, actor, client, body)
            else:
                await respond(text=outcome, blocks=settled, replace_original=True)

    async def cancel_button(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        async with answer_errors(respond, what="reminder_cancel"):
            ref = _ref(body)
            actor = await actor_for(body, client)
            text = await cancel(deps, actor, ref.reminder_id)
            await respond(text=text, blocks=await list_text(deps, actor), replace_original=True)

    async def open_form(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        async with answer_errors(respond, what="remind_form"):
            lead_id = button_value(LeadRef, body, again="open the lead again").lead_id
            actor = await actor_for(body, client)
            async with deps.database.uow(actor.org_id) as session:
                lead = await get_lead(session, org_id=actor.org_id, lead_id=lead_id)
                name = lead.display_name
            context = ModalContext(channel_id=(body.get("channel") or {}).get("id"), lead_id=lead_id)
            initial = tomorrow_morning(actor, dt.datetime.now(dt.UTC))
            await client.views_open(
                trigger_id=body["trigger_id"], view=remind_modal(context, lead_name=name, initial=initial)
            )

    @app.view(View.REMIND)
    async def submit(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        values = view.get("state", {}).get("values", {})
        picked = values.get(Block.WHEN, {}).get(Block.WHEN, {}).get("selected_date_time")
        message = (values.get(Block.MESSAGE, {}).get(Block.MESSAGE, {}).get("value") or "").strip() or None
        now = dt.datetime.now(dt.UTC)
        if picked is None:
            await ack(response_action="errors", errors={Block.WHEN: "choose a date and time"})
            return
        at = dt.datetime.fromtimestamp(int(picked), dt.UTC)
        if at <= now:
            await ack(response_action="errors", errors={Block.WHEN: "that time has already passed"})
            return
        try:
            context = ModalContext.model_validate_json(view.get("private_metadata") or "{}")
        except ValidationError:
            context = ModalContext()
        if context.lead_id is None:
            await ack(
                response_action="errors", errors={Block.WHEN: "this form is out of date; open the lead again"}
            )
            return
        try:
            actor = await actor_for(body, client)
            zone = ZoneInfo(actor.timezone)
            done = await set_reminder(
                deps,
                actor,
                context.lead_id,
                Due(at=at, local=at.astimezone(zone), explicit_time=True),
                message,
            )
        except DomainError as exc:
            await ack(response_action="errors", errors={Block.WHEN: error_text(exc)})
            return
        await ack()
        await client.chat_postMessage(channel=actor.slack_user_id, text=confirmation(done))

    app.action(Action.REMINDER_DONE)(ack=just_ack, lazy=[settle])
    app.action(Action.REMINDER_SNOOZE_HOUR)(ack=just_ack, lazy=[settle])
    app.action(Action.REMINDER_SNOOZE_TOMORROW)(ack=just_ack, lazy=[settle])
    app.action(Action.REMINDER_CANCEL)(ack=just_ack, lazy=[cancel_button])
    app.action(Action.LEAD_REMIND)(ack=just_ack, lazy=[open_form])
