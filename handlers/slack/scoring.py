"""Scoring in Slack: `/lead score` (why this score), manager adjustments and the lock, `/lead rules` with the
admins' rule form, the card's Score details button, and the hot-lead alert.

A rule saved or switched on/off rescores the organization in the background (set-based, one statement); the
admin is told when it is done.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.actor import Actor, actor_for_payload, user_row
from handlers.slack.blocks.scoring import hot_alert, rule_modal, rules_blocks, score_blocks
from handlers.slack.clients import ClientFor
from handlers.slack.deps import SlackDeps
from handlers.slack.errors import answer_errors, error_text
from handlers.slack.ids import Action, Block, LeadRef, ModalContext, RuleRef, View
from handlers.slack.replies import EPHEMERAL, button_value, just_ack
from lma_bot.db import Database
from lma_bot.errors import DomainError, InvalidInput, PermissionDenied
from lma_bot.leads.service import get_lead
from lma_bot.models import LeadScoringRule, User
from lma_bot.scoring import service
from lma_bot.scoring.publish import HotAlert
from lma_bot.scoring.rescore import rescore

log = logging.getLogger(__name__)

_background: set[asyncio.Task[None]] = set()
#: modal block -> the RuleInput field its errors are about
RULE_FIELDS = {
    Block.RULE_NAME: "name",
    Block.RULE_POINTS: "points",
    Block.RULE_POLICY: "repeat_policy",
    Block.RULE_LIMIT: "repeat_limit",
    Block.RULE_PRIORITY: "priority",
    Block.RULE_CRITERIA: "criteria",
}


async def breakdown(deps: SlackDeps, actor: Actor, lead_id: int) -> list[dict[str, Any]]:
    async with deps.database.uow(actor.org_id) as session:
        lead = await get_lead(session, org_id=actor.org_id, lead_id=lead_id)
        found = await service.score_breakdown(session, org_id=actor.org_id, lead_id=lead.id)
        names = {r.id: r.name for r in await service.list_rules(session, org_id=actor.org_id)}
        return score_blocks(found, lead_name=lead.display_name, rule_names=names, can_adjust=actor.is_manager)


def parse_adjustment(text: str) -> tuple[int | None, int | None]:
    """``+10`` / ``-5`` -> (delta, None); ``=50`` -> (None, 50)."""
    raw = text.strip()
    try:
        if raw.startswith("="):
            return None, int(raw[1:])
        if raw[:1] in "+-" and raw[1:].isdigit():
            return int(raw), None
    except ValueError:
        pass
    raise InvalidInput(f"`{raw}` is not a change: write `+10`, `-5` or `=50`")


async def adjust(deps: SlackDeps, actor: Actor, lead_id: int, amount: str, reason: str) -> str:
    delta, set_to = parse_adjustment(amount)
    async with deps.database.uow(actor.org_id) as session:
        user = await user_row(session, actor)
        lead = await get_lead(session, org_id=actor.org_id, lead_id=lead_id)
        before, name = lead.score, lead.display_name
        change = await service.adjust_score(
            session,
            org_id=actor.org_id,
            lead_id=lead_id,
            actor=user,
            reason=reason,
            delta=delta,
            set_to=set_to,
        )
    after = change.score if change is not None else before
    return f":pencil2: Score of *#{lead_id} {name}*: {before} → *{after}* ({reason.strip()})."


async def set_lock(deps: SlackDeps, actor: Actor, lead_id: int, *, lock: bool) -> str:
    async with deps.database.uow(actor.org_id) as session:
        user = await user_row(session, actor)
        lead = await get_lead(session, org_id=actor.org_id, lead_id=lead_id)
        name = lead.display_name
        if lock:
            await service.lock_score(session, org_id=actor.org_id, lead_id=lead_id, actor=user)
        else:
            await service.unlock_score(session, org_id=actor.org_id, lead_id=lead_id, actor=user)
    if lock:
        return f":lock: Score of *#{lead_id} {name}* locked: rules and decay leave it alone until unlocked."
    return f":unlock: Score of *#{lead_id} {name}* unlocked and brought up to date with the rules."


async def rules_list(deps: SlackDeps, actor: Actor) -> list[dict[str, Any]]:
    async with deps.database.uow(actor.org_id) as session:
        rules = await service.list_rules(session, org_id=actor.org_id)
        return rules_blocks(rules, can_edit=actor.role == "admin")


def _require_admin(actor: Actor) -> None:
    if actor.role != "admin":
        raise PermissionDenied("only admins can change scoring rules")


async def open_rule_form(
    deps: SlackDeps, client: AsyncWebClient, actor: Actor, trigger_id: str, rule_id: int | None
) -> None:
    _require_admin(actor)
    rule = None
    if rule_id is not None:
        async with deps.database.uow(actor.org_id) as session:
            rule = await service.get_rule(session, org_id=actor.org_id, rule_id=rule_id)
    context = RuleRef(rule_id=rule_id).dumps() if rule_id is not None else ModalContext().dumps()
    await client.views_open(trigger_id=trigger_id, view=rule_modal(rule, context))


async def set_active(
    deps: SlackDeps, client: AsyncWebClient, actor: Actor, rule_id: int, *, active: bool | None = None
) -> str:
    """Enable or disable a rule (``None``: the opposite of now), then rescore in the background."""
    _require_admin(actor)
    async with deps.database.uow(actor.org_id) as session:
        user = await user_row(session, actor)
        rule = await service.get_rule(session, org_id=actor.org_id, rule_id=rule_id)
        if active is None:
            active = not rule.is_active
        await service.set_rule_active(
            session, org_id=actor.org_id, rule_id=rule_id, active=active, actor=user
        )
        name = rule.name
    rescore_in_background(deps, client, actor)
    state = "enabled" if active else "disabled"
    return f":gear: Rule {rule_id} *{name}* {state}; rescoring the organization's leads."


def rescore_in_background(deps: SlackDeps, client: AsyncWebClient, actor: Actor) -> None:
    """Rescore after a rule change, then tell the admin what moved."""

    async def run() -> None:
        try:
            summary = await rescore(deps.database, actor.org_id, publisher=deps.scores)
        except Exception:
            log.exception("scoring.rescore.failed org=%s", actor.org_id)
            return
        changed = len(summary.changes)
        try:
            await client.chat_postMessage(
                channel=actor.slack_user_id,
                text=f":white_check_mark: Rescored the organization's leads: {changed} score"
                f"{'s' if changed != 1 else ''} changed.",
            )
        except SlackApiError as exc:
            log.warning("scoring.rescore.notify_failed error=%s", exc.response.get("error"))

    task = asyncio.get_running_loop().create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)


def _values(view: dict[str, Any]) -> dict[str, Any]:
    state = view.get("state", {}).get("values", {})
    out: dict[str, Any] = {}
    for block in RULE_FIELDS:
        element = state.get(block, {}).get(block, {})
        if "selected_option" in element:
            option = element["selected_option"]
            out[block] = option["value"] if option else None
        else:
            out[block] = (element.get("value") or "").strip() or None
    return out


def rule_input(view: dict[str, Any], existing: LeadScoringRule | None) -> service.RuleInput | dict[str, str]:
    """The form as a RuleInput, or per-field errors (block id -> message) for the modal."""
    raw = _values(view)
    errors: dict[str, str] = {}
    numbers: dict[str, int | None] = {}
    for block, what in (
        (Block.RULE_POINTS, "points"),
        (Block.RULE_LIMIT, "times"),
        (Block.RULE_PRIORITY, "priority"),
    ):
        text = raw.get(block)
        if text is None:
            numbers[block] = None
            continue
        try:
            numbers[block] = int(text)
        except ValueError:
            errors[block] = f"{what} must be a whole number"
    try:
        criteria = json.loads(raw.get(Block.RULE_CRITERIA) or "")
    except json.JSONDecodeError as exc:
        errors[Block.RULE_CRITERIA] = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        criteria = None
    if not raw.get(Block.RULE_NAME):
        errors[Block.RULE_NAME] = "give the rule a name"
    if numbers.get(Block.RULE_POINTS) is None and Block.RULE_POINTS not in errors:
        errors[Block.RULE_POINTS] = "how many points (e.g. 10 or -5)"
    if errors:
        return errors
    try:
        data = service.RuleInput(
            name=raw[Block.RULE_NAME],
            rule_type=existing.rule_type if existing else "behavioral",
            criteria=criteria,
            points=numbers[Block.RULE_POINTS],
            repeat_policy=raw.get(Block.RULE_POLICY) or "once_per_lead",
            repeat_limit=numbers.get(Block.RULE_LIMIT),
            priority=numbers.get(Block.RULE_PRIORITY) or 1,
            is_active=existing.is_active if existing else True,
        )
        service.check_rule(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        return {Block.RULE_NAME: f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"}
    except InvalidInput as exc:
        return {_block_for(exc.message): exc.message}
    return data


def _block_for(message: str) -> str:
    head = message.split(":", 1)[0].split(".", 1)[0].split("[", 1)[0]
    for block, name in RULE_FIELDS.items():
        if head == name:
            return block
    return Block.RULE_CRITERIA


def hot_alert_sender(database: Database, client_for: ClientFor) -> Any:
    """The ScorePublisher's ``on_hot``: one message per crossing into hot, to the organization's alert
    channel when set, else a DM to the lead's owner."""

    async def send(alert: HotAlert) -> None:
        client = await client_for(alert.org_id)
        if client is None:
            return
        async with database.uow(alert.org_id) as session:
            lead = await get_lead(session, org_id=alert.org_id, lead_id=alert.lead_id)
            owner = await session.get(User, (alert.org_id, alert.owner_id)) if alert.owner_id else None
            name = lead.display_name
            owner_slack = owner.slack_user_id if owner is not None and owner.is_active else None
        channel = alert.alert_channel or owner_slack
        if channel is None:
            log.info("scoring.hot_alert.nobody org=%s lead_id=%s", alert.org_id, alert.lead_id)
            return
        await client.chat_postMessage(
            channel=channel,
            text=f"#{alert.lead_id} {name} is now hot ({alert.score} points)",
            blocks=hot_alert(
                lead_id=alert.lead_id,
                lead_name=name,
                score=alert.score,
                owner_slack_id=owner_slack if alert.alert_channel else None,
            ),
        )

    return send


def register(app: AsyncApp, deps: SlackDeps) -> None:

    async def actor_for(body: dict[str, Any], client: AsyncWebClient) -> Actor:
        return await actor_for_payload(deps, client, body)

    async def score_details(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        async with answer_errors(respond, what="score_details"):
            lead_id = button_value(LeadRef, body, again="open the lead again").lead_id
            actor = await actor_for(body, client)
            await respond(
                text=f"Score of lead #{lead_id}", blocks=await breakdown(deps, actor, lead_id), **EPHEMERAL
            )

    async def edit_rule(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        async with answer_errors(respond, what="rule_edit"):
            rule_id = button_value(RuleRef, body, again="run `/lead rules` again").rule_id
            actor = await actor_for(body, client)
            await open_rule_form(deps, client, actor, body["trigger_id"], rule_id)

    async def toggle_rule(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        async with answer_errors(respond, what="rule_toggle"):
            rule_id = button_value(RuleRef, body, again="run `/lead rules` again").rule_id
            actor = await actor_for(body, client)
            text = await set_active(deps, client, actor, rule_id)
            await respond(text=text, blocks=await rules_list(deps, actor), replace_original=True)

    @app.view(View.RULE)
    async def save_rule(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        try:
            rule_id: int | None = RuleRef.model_validate_json(view.get("private_metadata") or "").rule_id
        except ValidationError:
            rule_id = None
        try:
            actor = await actor_for(body, client)
            _require_admin(actor)
            async with deps.database.uow(actor.org_id) as session:
                existing = (
                    await service.get_rule(session, org_id=actor.org_id, rule_id=rule_id)
                    if rule_id is not None
                    else None
                )
                checked = rule_input(view, existing)
                if isinstance(checked, dict):
                    await ack(response_action="errors", errors=checked)
                    return
                user = await user_row(session, actor)
                if rule_id is None:
                    rule = await service.create_rule(session, org_id=actor.org_id, data=checked, actor=user)
                else:
                    rule = await service.update_rule(
                        session, org_id=actor.org_id, rule_id=rule_id, data=checked, actor=user
                    )
                saved_id, saved_name = rule.id, rule.name
        except DomainError as exc:
            await ack(response_action="errors", errors={Block.RULE_NAME: error_text(exc)})
            return
        await ack()
        await client.chat_postMessage(
            channel=actor.slack_user_id,
            text=f":gear: Rule {saved_id} *{saved_name}* saved; rescoring the organization's leads.",
        )
        rescore_in_background(deps, client, actor)

    app.action(Action.LEAD_SCORE)(ack=just_ack, lazy=[score_details])
    app.action(Action.RULE_EDIT)(ack=just_ack, lazy=[edit_rule])
    app.action(Action.RULE_TOGGLE)(ack=just_ack, lazy=[toggle_rule])
