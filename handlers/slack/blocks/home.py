from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from handlers.slack.blocks.common import TEMPERATURE_EMOJI, esc
from handlers.slack.ids import Action, LeadRef
from lma_bot.leads.schemas import LeadSummary


def home_view(*, name: str, leads: list[LeadSummary]) -> dict[str, Any]:
    """The App Home tab: the user's open leads, hot first."""
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
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text="`/lead help` shows everything you can do.")])
    )
    return View(type="home", blocks=blocks).to_dict()
