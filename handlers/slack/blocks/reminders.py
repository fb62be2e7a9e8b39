"""Reminder messages: the DM a reminder arrives as, its settled forms, and `/lead remind list`."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    MarkdownTextObject,
    SectionBlock,
)

from handlers.slack.blocks.common import dump, esc, slack_date, user_ref
from handlers.slack.blocks.messages import lead_line, open_button
from handlers.slack.ids import Action, LeadRef, ReminderRef

#: Slack message metadata event type of a reminder DM; its payload carries the send key.
METADATA_EVENT = "lma_reminder"


def _about(lead_id: int, lead_name: str, message: str | None) -> str:
    text = f":alarm_clock: Follow up on {lead_line(lead_id, lead_name)}"
    return text + (f"\n>{esc(message)}" if message else "")


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def reminder_dm(
    *,
    reminder_id: int,
    lead_id: int,
    lead_name: str,
    message: str | None,
    due_at: dt.datetime,
    set_by_slack_id: str | None,
    set_by_name: str | None,
    for_self: bool,
) -> list[dict[str, Any]]:
    """Built as plain dicts: the scheduler sends thousands of these, and model validation costs more than
    the rest of the message."""
    ref = ReminderRef(reminder_id=reminder_id).dumps()
    who = "you" if for_self else user_ref(set_by_slack_id, set_by_name)
    return [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _about(lead_id, lead_name, message)},
            "accessory": _button("Open lead", Action.LEAD_OPEN, LeadRef(lead_id=lead_id).dumps()),
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"Set by {who} for {slack_date(due_at)}"}],
        },
        {
            "type": "actions",
            "elements": [
                _button("Done", Action.REMINDER_DONE, ref, "primary"),
                _button("Snooze 1 h", Action.REMINDER_SNOOZE_HOUR, ref),
                _button("Tomorrow 9:00", Action.REMINDER_SNOOZE_TOMORROW, ref),
            ],
        },
    ]


#: Reminders in one coalesced DM: a header and two blocks each stay within Slack's 50 blocks per message.
MAX_PER_MESSAGE = 24
_ROW = "reminder-"  # block_id of a reminder's row in a coalesced DM: f"{_ROW}{id}", its controls + "-tail"


@dataclass(frozen=True)
class DueItem:
    """One reminder of a DM (the view model of a row)."""

    reminder_id: int
    lead_id: int
    lead_name: str
    message: str | None
    due_at: dt.datetime
    set_by_slack_id: str | None
    set_by_name: str | None
    for_self: bool


def row_id(reminder_id: int) -> str:
    return f"{_ROW}{reminder_id}"


def tail_id(reminder_id: int) -> str:
    return f"{_ROW}{reminder_id}-tail"


def _controls(reminder_id: int) -> list[dict[str, Any]]:
    ref = ReminderRef(reminder_id=reminder_id).dumps()
    return [
        _button("Done", Action.REMINDER_DONE, ref, "primary"),
        _button("Snooze 1 h", Action.REMINDER_SNOOZE_HOUR, ref),
        _button("Tomorrow 9:00", Action.REMINDER_SNOOZE_TOMORROW, ref),
    ]


@functools.lru_cache(maxsize=1024)
def _lead_ref(lead_id: int) -> str:
    return LeadRef(lead_id=lead_id).dumps()


def reminders_dm(items: Sequence[DueItem], *, part: int = 1, parts: int = 1) -> list[dict[str, Any]]:
    """The DM for reminders due together for one person: one reminder is :func:`reminder_dm`; several are a
    header and, per reminder, a section (the lead, the message, who set it) and its own Done / Snooze 1 h /
    Tomorrow 9:00 row. At most :data:`MAX_PER_MESSAGE` per message (the caller splits)."""
    if len(items) > MAX_PER_MESSAGE:
        raise ValueError(f"at most {MAX_PER_MESSAGE} reminders per message, got {len(items)}")
    if len(items) == 1 and parts == 1:
        i = items[0]
        return reminder_dm(
            reminder_id=i.reminder_id,
            lead_id=i.lead_id,
            lead_name=i.lead_name,
            message=i.message,
            due_at=i.due_at,
            set_by_slack_id=i.set_by_slack_id,
            set_by_name=i.set_by_name,
            for_self=i.for_self,
        )

    def set_by(i: DueItem) -> str:
        who = "you" if i.for_self else user_ref(i.set_by_slack_id, i.set_by_name)
        return f"Set by {who} for {slack_date(i.due_at)}"

    notes = [set_by(i) for i in items]
    common = notes[0] if len(set(notes)) == 1 else None  # said once in the header when every row says it
    head = f":alarm_clock: *{len(items)} follow-up{'s' if len(items) != 1 else ''} due*"
    if parts > 1:
        head += f" ({part} of {parts})"
    if common is not None:
        head += f"\n{common}"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": head}}]
    for i, note in zip(items, notes, strict=True):
        line = f"Follow up on {lead_line(i.lead_id, i.lead_name)}"
        if i.message:
            line += f"\n>{esc(i.message)}"
        if common is None:
            line += f"\n{note}"
        blocks.append(
            {
                "type": "section",
                "block_id": row_id(i.reminder_id),
                "text": {"type": "mrkdwn", "text": line},
                "accessory": _button("Open lead", Action.LEAD_OPEN, _lead_ref(i.lead_id)),
            }
        )
        blocks.append(
            {"type": "actions", "block_id": tail_id(i.reminder_id), "elements": _controls(i.reminder_id)}
        )
    return blocks


def reminders_text(items: Sequence[DueItem]) -> str:
    """The notification text of :func:`reminders_dm`."""
    if len(items) == 1:
        return reminder_text(items[0].lead_id, items[0].lead_name, items[0].message)
    leads = ", ".join(f"#{i.lead_id} {i.lead_name}" for i in items[:5])
    return f"{len(items)} follow-ups due: {leads}" + ("…" if len(items) > 5 else "")


def rows_in(blocks: Sequence[Mapping[str, Any]]) -> list[int]:
    """Reminder ids of the rows of a coalesced DM (empty for a one-reminder DM)."""
    found = []
    for block in blocks:
        bid = str(block.get("block_id") or "")
        if block.get("type") == "section" and bid.startswith(_ROW) and bid[len(_ROW) :].isdigit():
            found.append(int(bid[len(_ROW) :]))
    return found


def with_rows_settled(
    blocks: Sequence[Mapping[str, Any]], outcomes: Mapping[int, str | None]
) -> list[dict[str, Any]]:
    """A coalesced DM with the controls of each reminder in ``outcomes`` replaced by its outcome (None: its
    controls, as they are if still there); every other block as it was."""
    out: list[dict[str, Any]] = []
    tails = {tail_id(rid): (rid, outcome) for rid, outcome in outcomes.items()}
    for block in blocks:
        found = tails.get(str(block.get("block_id") or ""))
        if found is None:
            out.append(dict(block))
            continue
        rid, outcome = found
        if outcome is None:
            live = block.get("type") == "actions"
            out.append(
                dict(block)
                if live
                else {"type": "actions", "block_id": tail_id(rid), "elements": _controls(rid)}
            )
        else:
            out.append(
                {
                    "type": "context",
                    "block_id": tail_id(rid),
                    "elements": [{"type": "mrkdwn", "text": outcome}],
                }
            )
    return out


def row_outcome(
    *, status: str, done_at: dt.datetime | None, due_at: dt.datetime, slack_ts: str | None, message_ts: str
) -> str | None:
    """What a reminder's row in the coalesced DM ``message_ts`` says now (None: its controls are still
    live), from the reminder's state alone so that any rewrite of the message agrees with the last one."""
    if done_at is not None:
        return f":white_check_mark: Done {slack_date(done_at)}"
    if status == "cancelled":
        return ":wastebasket: Cancelled"
    if status in ("scheduled", "sending"):
        return f":zzz: Snoozed until {slack_date(due_at)}"
    if status == "failed":
        return ":zzz: Snoozed; it could not be delivered again"
    if slack_ts != message_ts:
        return ":zzz: Snoozed; reminded again since"
    return None


def reminder_text(lead_id: int, lead_name: str, message: str | None) -> str:
    return f"Reminder: follow up on #{lead_id} {lead_name}" + (f": {message}" if message else "")


def reminder_settled(
    *, lead_id: int, lead_name: str, message: str | None, outcome: str
) -> list[dict[str, Any]]:
    """The DM after Done or a snooze: the buttons are replaced by what happened."""
    return dump(
        [
            SectionBlock(
                text=MarkdownTextObject(text=_about(lead_id, lead_name, message)),
                accessory=open_button(lead_id),
            ),
            ContextBlock(elements=[MarkdownTextObject(text=outcome)]),
        ]
    )


def reminder_failed_dm(*, lead_id: int, lead_name: str, recipient: str, reason: str) -> list[dict[str, Any]]:
    return dump(
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=f":warning: Your reminder about {lead_line(lead_id, lead_name)} for {recipient} "
                    f"could not be delivered: `{esc(reason)}`."
                ),
                accessory=open_button(lead_id),
            )
        ]
    )


def reminder_list(rows: Sequence[tuple[int, int, str, str | None, dt.datetime, str]]) -> list[dict[str, Any]]:
    """`/lead remind list`: (reminder id, lead id, lead name, message, due, status), soonest first."""
    if not rows:
        return dump(
            [
                SectionBlock(
                    text=MarkdownTextObject(
                        text="You have no pending reminders. Set one with `/lead remind <lead> <when> [message]`, "
                        "e.g. `/lead remind 42 tomorrow 9am call back`."
                    )
                )
            ]
        )
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=f"*Your reminders* ({len(rows)})")),
        DividerBlock(),
    ]
    for reminder_id, lead_id, lead_name, message, due_at, status in rows:
        line = f"{slack_date(due_at)} · {lead_line(lead_id, lead_name)}"
        if message:
            line += f"\n{esc(message)}"
        if status == "sending":
            line += "\n_being delivered_"
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=line),
                accessory=ButtonElement(
                    text="Cancel",
                    action_id=Action.REMINDER_CANCEL,
                    value=ReminderRef(reminder_id=reminder_id).dumps(),
                    style="danger",
                ),
            )
        )
    return dump(blocks)


def digest_blocks(
    items: Sequence[tuple[int, str, str | None, dt.datetime]], total: int
) -> list[dict[str, Any]]:
    """The morning digest: (lead id, lead name, message, due) of the oldest overdue follow-ups."""
    head = f":sunrise: Good morning! *{total}* follow-up{'s' if total != 1 else ''} you were reminded of "
    head += "are" if total != 1 else "is"
    head += " still open."
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=head)), DividerBlock()]
    for lead_id, lead_name, message, due_at in items:
        line = f"{lead_line(lead_id, lead_name)} · due {slack_date(due_at)}"
        if message:
            line += f"\n{esc(message)}"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=line), accessory=open_button(lead_id)))
    if total > len(items):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"…and {total - len(items)} more.")]))
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="Mark one Done from its reminder message. Your digest comes after your quiet hours."
                )
            ]
        )
    )
    return dump(blocks)
