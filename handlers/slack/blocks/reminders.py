"""Reminder messages: the DM a reminder arrives as, its settled forms, and `/lead remind list`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
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
