from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from handlers.slack.blocks.common import TEMPERATURE_EMOJI, dump, esc, slack_date, user_ref
from handlers.slack.ids import Action, LeadRef
from lma_bot.leads.schemas import LeadCard, NoteView


def lead_card(card: LeadCard, notes: list[NoteView]) -> list[dict[str, Any]]:
    """The lead card of `/lead show`: facts, last notes visible to the viewer, next reminder, actions."""
    owner = user_ref(card.owner.slack_user_id, card.owner.name) if card.owner else "_unassigned_"
    temperature = f"{TEMPERATURE_EMOJI.get(card.lead_temperature, '')} {card.lead_temperature}".strip()
    fields = [
        MarkdownTextObject(text=f"*Email*\n{esc(card.email) or '_none_'}"),
        MarkdownTextObject(text=f"*Company*\n{esc(card.company) or '_none_'}"),
        MarkdownTextObject(text=f"*Status*\n{card.status}"),
        MarkdownTextObject(text=f"*Owner*\n{owner}"),
        MarkdownTextObject(text=f"*Score*\n{card.score} ({temperature})"),
        MarkdownTextObject(text=f"*Tags*\n{', '.join(f'`{esc(t)}`' for t in card.tags) or '_none_'}"),
    ]
    blocks = [
        HeaderBlock(text=f"#{card.id} {card.name}"[:150]),
        SectionBlock(fields=fields),
    ]
    details = [d for d in (card.job_title and esc(card.job_title), card.phone and esc(card.phone)) if d]
    source = f"source {esc(card.source)} · " if card.source else ""
    details_text = " · ".join(details) + (" · " if details else "")
    blocks.append(
        ContextBlock(
            elements=[MarkdownTextObject(text=f"{details_text}{source}added {slack_date(card.created_at)}")]
        )
    )
    blocks.append(DividerBlock())
    if notes:
        lines = []
        for note in notes:
            lock = ":lock: " if note.is_private else ""
            author = user_ref(note.author_slack_id, note.author_name or "someone")
            lines.append(
                f"{lock}{author}, {slack_date(note.created_at, '{date_short_pretty}')}: {note.content[:280]}"
            )
        blocks.append(SectionBlock(text=MarkdownTextObject(text="*Latest notes*\n" + "\n".join(lines))))
    else:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="*Latest notes*\n_No notes yet._")))
    if card.assignments:
        lines = []
        for a in card.assignments:
            to = user_ref(a.to_slack_id, a.to_name)
            by = f" by {user_ref(a.by_slack_id, a.by_name)}" if (a.by_slack_id or a.by_name) else ""
            reason = f": {esc(a.reason)[:120]}" if a.reason else ""
            lines.append(f"{slack_date(a.at, '{date_short_pretty}')} · {a.status} → {to}{by}{reason}")
        blocks.append(SectionBlock(text=MarkdownTextObject(text="*Last assignments*\n" + "\n".join(lines))))
    reminder = slack_date(card.next_reminder_at) if card.next_reminder_at else "_none set_"
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=f":alarm_clock: Next reminder: {reminder}")])
    )
    value = LeadRef(lead_id=card.id).dumps()
    blocks.append(
        ActionsBlock(
            block_id=f"lead-actions-{card.id}",
            elements=[
                ButtonElement(text="Add note", action_id=Action.LEAD_ADD_NOTE, value=value, style="primary"),
                ButtonElement(text="Change status", action_id=Action.LEAD_CHANGE_STATUS, value=value),
                ButtonElement(text="Reassign", action_id=Action.LEAD_REASSIGN, value=value),
                ButtonElement(text="Remind", action_id=Action.LEAD_REMIND, value=value),
                ButtonElement(text="Score details", action_id=Action.LEAD_SCORE, value=value),
            ],
        )
    )
    return dump(blocks)
