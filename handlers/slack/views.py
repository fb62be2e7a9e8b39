"""Modal submissions. Validation errors go back into the modal, per field; a double submit of the same
view creates nothing twice. Confirmations arrive as a DM from the bot after the modal closes."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from pydantic import ValidationError
from redis.exceptions import RedisError
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack import flows
from handlers.slack.actor import Actor, resolve_actor
from handlers.slack.blocks.messages import lead_created
from handlers.slack.commands import note_confirmation
from handlers.slack.deps import SlackDeps
from handlers.slack.errors import error_text
from handlers.slack.ids import Block, ModalContext, View
from lma_bot.errors import DomainError, InvalidInput, parse_model
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import DuplicateLead

log = logging.getLogger(__name__)

SUBMISSION_TTL_SECONDS = 3600


def _value(view: dict[str, Any], block: Block) -> Any:
    element = view.get("state", {}).get("values", {}).get(block, {}).get(block, {})
    if "value" in element:
        return (element["value"] or "").strip() or None
    if "selected_option" in element:
        option = element["selected_option"]
        return option["value"] if option else None
    if "selected_options" in element:
        return [o["value"] for o in element["selected_options"]]
    return None


def _context(view: dict[str, Any]) -> ModalContext:
    try:
        return ModalContext.model_validate_json(view.get("private_metadata") or "{}")
    except ValidationError:
        return ModalContext()


async def _first_submit(deps: SlackDeps, view: dict[str, Any]) -> bool:
    """Claim this view's submission; False when the same view was already submitted successfully."""
    key = deps.keys.dedupe("slack-view", view["id"])
    try:
        return bool(await deps.redis.set(key, "1", nx=True, ex=SUBMISSION_TTL_SECONDS))
    except RedisError:
        log.warning("slack.view.dedupe_unavailable view_id=%s", view["id"])
        return True


async def _release(deps: SlackDeps, view: dict[str, Any]) -> None:
    with contextlib.suppress(RedisError):
        await deps.redis.delete(deps.keys.dedupe("slack-view", view["id"]))


FIELD_BLOCKS = {
    "email": Block.EMAIL,
    "first_name": Block.FIRST_NAME,
    "last_name": Block.LAST_NAME,
    "company": Block.COMPANY,
    "source": Block.SOURCE,
    "tags": Block.TAGS,
}


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def actor_for(body: dict[str, Any], client: AsyncWebClient) -> Actor:
        return await resolve_actor(
            deps,
            client,
            team_id=body["team"]["id"],
            team_domain=body["team"].get("domain"),
            slack_user_id=body["user"]["id"],
        )

    @app.view(View.CREATE_LEAD)
    async def create_lead(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        raw_tags = _value(view, Block.TAGS) or ""
        fields = {
            "email": _value(view, Block.EMAIL),
            "first_name": _value(view, Block.FIRST_NAME),
            "last_name": _value(view, Block.LAST_NAME),
            "company": _value(view, Block.COMPANY),
            "source": _value(view, Block.SOURCE) or "slack",
            "tags": [t for t in raw_tags.split(",") if t.strip()],
        }
        try:
            data = parse_model(LeadCreate, fields)
        except InvalidInput as exc:
            field = (exc.field or "").split(".")[0]
            block = FIELD_BLOCKS.get(field, Block.EMAIL)
            message = exc.message.split(": ", 1)[-1] if field in FIELD_BLOCKS else exc.message
            await ack(response_action="errors", errors={block: message})
            return
        if not await _first_submit(deps, view):
            await ack()
            return
        try:
            actor = await actor_for(body, client)
            lead_id, name = await flows.create(deps, actor, data)
        except DuplicateLead as exc:
            await _release(deps, view)
            await ack(response_action="errors", errors={Block.EMAIL: f"already lead #{exc.existing_id}"})
            return
        except DomainError as exc:
            await _release(deps, view)
            await ack(response_action="errors", errors={Block.EMAIL: error_text(exc)})
            return
        await ack()
        await client.chat_postMessage(
            channel=actor.slack_user_id, text=f"Created lead #{lead_id}", blocks=lead_created(lead_id, name)
        )

    @app.view(View.ADD_NOTE)
    async def add_note(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        text = _value(view, Block.NOTE)
        context = _context(view)
        if not text:
            await ack(response_action="errors", errors={Block.NOTE: "write something first"})
            return
        if context.lead_id is None:
            await ack(
                response_action="errors", errors={Block.NOTE: "this form is out of date; open the lead again"}
            )
            return
        if not await _first_submit(deps, view):
            await ack()
            return
        private = "private" in (_value(view, Block.PRIVATE) or [])
        try:
            actor = await actor_for(body, client)
            outcome = await flows.add_note(deps, client, actor, context.lead_id, text, private=private)
        except DomainError as exc:
            await _release(deps, view)
            await ack(response_action="errors", errors={Block.NOTE: error_text(exc)})
            return
        await ack()
        await client.chat_postMessage(
            channel=actor.slack_user_id, text=note_confirmation(outcome, private=private)
        )

    @app.view(View.CHANGE_STATUS)
    async def change_status(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        status = _value(view, Block.STATUS)
        context = _context(view)
        if not status or context.lead_id is None:
            await ack(response_action="errors", errors={Block.STATUS: "choose a status"})
            return
        try:
            actor = await actor_for(body, client)
            text = await flows.change_status(deps, actor, context.lead_id, status, _value(view, Block.REASON))
        except DomainError as exc:
            await ack(response_action="errors", errors={Block.STATUS: error_text(exc)})
            return
        await ack()
        await client.chat_postMessage(channel=actor.slack_user_id, text=text)
