from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from handlers.slack.blocks.assignments import approval_request
from handlers.slack.blocks.common import TEMPERATURE_EMOJI, esc, slack_date
from handlers.slack.ids import Action, LeadRef
from lma_bot.assignments.schemas import RequestView
from lma_bot.leads.schemas import LeadSummary


@dataclass(frozen=True)
class HomeReminder:
    reminder_id: int
    lead_id: int
    lead_name: str
    message: str | None
    due_at: dt.datetime


def home_view(
    *,
    name: str,
    leads: list[LeadSummary],
    reminders: list[HomeReminder] | None = None,
    approvals: list[RequestView] | None = None,
) -> dict[str, Any]:
    """The App Home tab: the user's open leads (hot first), their reminders due today, and for managers
    (``approvals`` given) the pending reassignment requests with their buttons."""
    blocks: list[Block] = [
        HeaderBlock(text=f"Hi {name.split()[0] if name else 'there'}, here are your open leads")
    ]
    if not leads:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text="You own no open leads. `/lead list unassigned` shows leads waiting for an owner."
                )
            )
        )
    for lead in leads:
        emoji = TEMPERATURE_EMOJI.get(lead.lead_temperature, "")
        company = f" · {esc(lead.company)}" if lead.company else ""
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"{emoji} *#{lead.id} {esc(lead.name)}*{company}\n{lead.status} · score {lead.score}"
                ),
                accessory=ButtonElement(
                    text="Open",
                    action_id=f"{Action.LEAD_OPEN}-{lead.id}",
                    value=LeadRef(lead_id=lead.id).dumps(),
                ),
            )
        )
    if reminders is not None:
        blocks.append(DividerBlock())
        blocks.append(HeaderBlock(text="Due today"))
        if not reminders:
            blocks.append(SectionBlock(text=MarkdownTextObject(text="No follow-ups due today. :sunny:")))
        for r in reminders:
            line = f":alarm_clock: {slack_date(r.due_at, '{time}')} · *#{r.lead_id} {esc(r.lead_name)}*"
            if r.message:
                line += f"\n{esc(r.message)}"
            blocks.append(
                SectionBlock(
                    text=MarkdownTextObject(text=line),
                    accessory=ButtonElement(
                        text="Open",
                        action_id=f"{Action.LEAD_OPEN}-{r.lead_id}",
                        value=LeadRef(lead_id=r.lead_id).dumps(),
                    ),
                )
            )
    if approvals is not None:
        blocks.append(DividerBlock())
        blocks.append(HeaderBlock(text=f"Pending approvals ({len(approvals)})"))
        if not approvals:
            blocks.append(SectionBlock(text=MarkdownTextObject(text="Nothing waiting for a decision.")))
        for request in approvals:
            blocks.extend(Block.parse(b) for b in approval_request(request))  # type: ignore[misc]
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text="`/lead help` shows everything you can do.")])
    )
    return View(type="home", blocks=blocks).to_dict()
