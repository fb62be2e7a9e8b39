from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from handlers.slack.blocks.common import TEMPERATURE_EMOJI, dump, esc, user_ref
from handlers.slack.ids import Action, LeadRef, PageRequest
from lma_bot.leads.schemas import LeadPage, LeadQuery, ListFilter


def describe(query: LeadQuery) -> str:
    if query.text is not None:
        return f"Leads matching “{esc(query.text)}”"
    return {
        ListFilter.ALL: "All leads",
        ListFilter.MINE: "Your leads",
        ListFilter.UNASSIGNED: "Unassigned leads",
        ListFilter.HOT: "Hot leads",
        ListFilter.STATUS: f"Leads with status {esc(query.value)}",
        ListFilter.TAG: f"Leads tagged {esc(query.value)}",
    }[query.filter]


def empty_hint(query: LeadQuery) -> str:
    if query.text is not None:
        return "No lead matches. Try part of a name, a company or an email, e.g. `/lead find acme`."
    if query.filter is ListFilter.MINE:
        return "You own no leads yet. `/lead list unassigned` shows leads nobody owns."
    if query.filter is ListFilter.HOT:
        return "No hot leads right now. `/lead score <lead>` shows how a lead's score is made up."
    return "No leads here yet. Create one with `/lead create <email> [name]`."


def lead_page(page: LeadPage) -> list[dict[str, Any]]:
    """A page of leads, newest first, each with an Open button, and Previous/Next buttons."""
    title = describe(page.query)
    if not page.items:
        return dump([SectionBlock(text=MarkdownTextObject(text=f"*{title}*\n{empty_hint(page.query)}"))])
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"*{title}* (newest first)"))]
    for lead in page.items:
        owner = (
            user_ref(lead.owner_slack_id, lead.owner_name)
            if (lead.owner_slack_id or lead.owner_name)
            else "unassigned"
        )
        emoji = TEMPERATURE_EMOJI.get(lead.lead_temperature, "")
        company = f" · {esc(lead.company)}" if lead.company else ""
        email = f" · {esc(lead.email)}" if lead.email else ""
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"*#{lead.id} {esc(lead.name)}*{company}{email}\n{lead.status} · {lead.score} {emoji} · {owner}"
                ),
                accessory=ButtonElement(
                    text="Open",
                    action_id=f"{Action.LEAD_OPEN}-{lead.id}",
                    value=LeadRef(lead_id=lead.id).dumps(),
                ),
            )
        )
    buttons = []
    if page.has_prev and page.first is not None:
        buttons.append(
            ButtonElement(
                text="Previous",
                action_id=f"{Action.LIST_PAGE}-prev",
                value=PageRequest(query=page.query, before=page.first).dumps(),
            )
        )
    if page.has_next and page.last is not None:
        buttons.append(
            ButtonElement(
                text="Next",
                action_id=f"{Action.LIST_PAGE}-next",
                value=PageRequest(query=page.query, after=page.last).dumps(),
            )
        )
    if buttons:
        blocks.append(ActionsBlock(block_id="lead-list-pages", elements=buttons))
    else:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=f"{len(page.items)} shown, that's all.")])
        )
    return dump(blocks)
