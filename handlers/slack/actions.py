"""Buttons: open a lead, page a list, open the note/status forms from a card, add a mentioned member."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack import flows
from handlers.slack.actor import actor_for_payload, provision, slack_profile
from handlers.slack.blocks.card import lead_card
from handlers.slack.blocks.lists import lead_page
from handlers.slack.blocks.modals import add_note_modal, change_status_modal
from handlers.slack.deps import SlackDeps
from handlers.slack.errors import answer_errors
from handlers.slack.ids import Action, LeadRef, MemberRef, ModalContext, PageRequest
from handlers.slack.replies import EPHEMERAL, button_value, just_ack
from lma_bot.errors import PermissionDenied
from lma_bot.leads.service import STATUS_TRANSITIONS


def _lead_ref(body: dict[str, Any]) -> LeadRef:
    return button_value(LeadRef, body, again="run the command again")


async def _actor(deps: SlackDeps, client: AsyncWebClient, body: dict[str, Any]) -> Any:
    return await actor_for_payload(deps, client, body)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def open_lead(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        async with answer_errors(respond, what="open_lead"):
            actor = await _actor(deps, client, body)
            card, notes = await flows.card_for(deps, actor, _lead_ref(body).lead_id)
            await respond(text=f"Lead #{card.id} {card.name}", blocks=lead_card(card, notes), **EPHEMERAL)

    async def list_page(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        async with answer_errors(respond, what="list_page"):
            request = button_value(PageRequest, body, again="run the list again")
            actor = await _actor(deps, client, body)
            page = await flows.page(deps, actor, request.query, after=request.after, before=request.before)
            await respond(
                text="Leads", blocks=lead_page(page), response_type="ephemeral", replace_original=True
            )

    async def open_note_form(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        ref = _lead_ref(body)
        async with answer_errors(respond, what="note_form"):
            actor = await _actor(deps, client, body)
            card, _ = await flows.card_for(deps, actor, ref.lead_id)
            context = ModalContext(channel_id=(body.get("channel") or {}).get("id"), lead_id=ref.lead_id)
            await client.views_open(
                trigger_id=body["trigger_id"], view=add_note_modal(context, lead_name=card.name)
            )

    async def open_status_form(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        ref = _lead_ref(body)
        async with answer_errors(respond, what="status_form"):
            actor = await _actor(deps, client, body)
            card, _ = await flows.card_for(deps, actor, ref.lead_id)
            context = ModalContext(channel_id=(body.get("channel") or {}).get("id"), lead_id=ref.lead_id)
            view = change_status_modal(
                context, lead_name=card.name, current=card.status, allowed=STATUS_TRANSITIONS[card.status]
            )
            await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def add_mentioned(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        async with answer_errors(respond, what="add_mentioned"):
            actor = await _actor(deps, client, body)
            if not actor.is_manager:
                raise PermissionDenied("only managers and admins can add users; ask one of them")
            member = button_value(MemberRef, body)
            profile = await slack_profile(client, member.slack_user_id)
            added = await provision(
                deps, org_id=actor.org_id, slack_user_id=member.slack_user_id, profile=profile
            )
            await respond(
                text=f":bust_in_silhouette: <@{member.slack_user_id}> is now an lma-bot {added.role}.",
                **EPHEMERAL,
            )

    app.action(re.compile(f"^{Action.LEAD_OPEN}(-\\d+)?$"))(ack=just_ack, lazy=[open_lead])
    app.action(re.compile(f"^{Action.LIST_PAGE}-(prev|next)$"))(ack=just_ack, lazy=[list_page])
    app.action(Action.LEAD_ADD_NOTE)(ack=just_ack, lazy=[open_note_form])
    app.action(Action.LEAD_CHANGE_STATUS)(ack=just_ack, lazy=[open_status_form])
    app.action(re.compile(f"^{Action.USER_ADD_MENTIONED}-"))(ack=just_ack, lazy=[add_mentioned])
