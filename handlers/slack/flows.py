"""What each `/lead` verb does, shared by the slash command, buttons and modals: service calls inside a
unit of work, cache invalidation and notifications after the commit."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.actor import Actor
from handlers.slack.blocks.messages import mention_dm
from handlers.slack.deps import SlackDeps
from handlers.slack.grammar import MENTION
from handlers.slack.notify import send_dm
from lma_bot.leads import service as leads
from lma_bot.leads.schemas import Cursor, LeadCard, LeadCreate, LeadPage, LeadQuery, NoteView
from lma_bot.notes import service as notes


async def lead_id_for(deps: SlackDeps, actor: Actor, ref: str) -> int:
    text = ref.strip().removeprefix("#")
    if text.isdigit():
        return int(text)
    async with deps.database.uow(actor.org_id) as session:
        lead = await leads.resolve_lead(session, org_id=actor.org_id, ref=ref)
        return lead.id


async def card_for(deps: SlackDeps, actor: Actor, lead_id: int) -> tuple[LeadCard, list[NoteView]]:
    card = await deps.cards.get(deps.database, org_id=actor.org_id, lead_id=lead_id)
    return card, leads.visible_notes(card, viewer_id=actor.user_id, viewer_role=actor.role)


async def create(deps: SlackDeps, actor: Actor, data: LeadCreate) -> tuple[int, str]:
    async with deps.database.uow(actor.org_id) as session:
        lead = await leads.create_lead(session, org_id=actor.org_id, data=data, actor_id=actor.user_id)
        return lead.id, lead.display_name


async def page(
    deps: SlackDeps,
    actor: Actor,
    query: LeadQuery,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
) -> LeadPage:
    async with deps.database.uow(actor.org_id) as session:
        return await leads.list_leads(
            session, org_id=actor.org_id, viewer_id=actor.user_id, query=query, after=after, before=before
        )


async def change_status(deps: SlackDeps, actor: Actor, lead_id: int, status: str, reason: str | None) -> str:
    async with deps.database.uow(actor.org_id) as session:
        lead, previous = await leads.change_status(
            session,
            org_id=actor.org_id,
            lead_id=lead_id,
            status=status,
            actor_id=actor.user_id,
            reason=reason,
        )
        name = lead.display_name
    await deps.cards.invalidate(lead_id)
    return f":arrows_counterclockwise: *#{lead_id} {name}*: {previous} → *{status}*" + (
        f" ({reason})" if reason else ""
    )


@dataclass(frozen=True)
class NoteOutcome:
    lead_id: int
    lead_name: str
    notified: list[str]  # Slack ids that got a DM
    unknown: list[str]  # Slack ids mentioned who are not users


async def add_note(
    deps: SlackDeps, client: AsyncWebClient, actor: Actor, lead_id: int, text: str, *, private: bool
) -> NoteOutcome:
    mentioned_ids = MENTION.findall(text)
    async with deps.database.uow(actor.org_id) as session:
        mentions = await notes.resolve_mentions(session, org_id=actor.org_id, slack_user_ids=mentioned_ids)
        note, lead = await notes.add_note(
            session,
            org_id=actor.org_id,
            lead_id=lead_id,
            author_id=actor.user_id,
            content=text,
            mentioned=mentions.users,
            is_private=private,
        )
        recipients = [
            u.slack_user_id for u in notes.notify_mentioned(note, lead, mentions.users) if u.slack_user_id
        ]
        lead_name = lead.display_name
    await deps.cards.invalidate(lead_id)
    notified = []
    for slack_user_id in recipients:
        blocks = mention_dm(
            author_slack_id=actor.slack_user_id,
            author_name=actor.name,
            lead_id=lead_id,
            lead_name=lead_name,
            content=text,
            private=private,
        )
        if await send_dm(
            client, slack_user_id, text=f"{actor.name} mentioned you on lead #{lead_id}", blocks=blocks
        ):
            notified.append(slack_user_id)
    return NoteOutcome(lead_id=lead_id, lead_name=lead_name, notified=notified, unknown=mentions.unknown)
