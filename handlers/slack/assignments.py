"""Reassignment in Slack: `/lead assign`, the card's Reassign form, Approve / Reject / Cancel buttons, and
`/lead admin` assignment settings.

A manager's reassignment happens at once; a rep's becomes a pending request posted to the organization's
approvals channel (or as DMs to the managers while none is set). The decision is made once in PostgreSQL
(:func:`lma_bot.assignments.service.decide`); only the winner updates the messages, posts in the thread and
sends the DMs, after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.actor import Actor, actor_for_payload, provision, slack_profile, user_row
from handlers.slack.blocks.assignments import (
    admin_settings,
    approval_request,
    approval_settled,
    approval_text,
    duplicate_pending,
    reassign_modal,
    reassigned_text,
    request_sent,
    settled_dm,
    thread_note,
)
from handlers.slack.blocks.common import user_ref
from handlers.slack.deps import SlackDeps
from handlers.slack.errors import answer_errors, error_text
from handlers.slack.grammar import (
    AdminApprovalsChannel,
    AdminAway,
    AdminCapacity,
    AdminCommand,
    AdminExpiry,
    AdminSettings,
    AdminStrategy,
)
from handlers.slack.home import refresh_homes
from handlers.slack.ids import Action, AssignmentRef, Block, LeadRef, ModalContext, View
from handlers.slack.replies import EPHEMERAL, button_value, just_ack
from lma_bot.assignments import service
from lma_bot.assignments.schemas import RequestView
from lma_bot.db import Database
from lma_bot.errors import DomainError, InvalidInput, PermissionDenied
from lma_bot.leads.cache import LeadCardCache
from lma_bot.leads.service import resolve_lead
from lma_bot.users.service import get_by_slack_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    text: str
    blocks: list[dict[str, Any]] | None = None


async def _member(deps: SlackDeps, client: AsyncWebClient, actor: Actor, slack_user_id: str) -> int:
    """The user id of a teammate named by Slack id; a workspace member new to lma-bot becomes a rep."""
    async with deps.database.uow(actor.org_id) as session:
        user = await get_by_slack_id(session, org_id=actor.org_id, slack_user_id=slack_user_id)
        if user is not None:
            if not user.is_active:
                raise InvalidInput(f"<@{slack_user_id}> is deactivated in lma-bot and can't own leads")
            return user.id
    profile = await slack_profile(client, slack_user_id)
    added = await provision(deps, org_id=actor.org_id, slack_user_id=slack_user_id, profile=profile)
    return added.user_id


# --- after-commit effects -----------------------------------------------------------------------------


async def _post(
    client: AsyncWebClient, channel: str, *, text: str, blocks: list[dict[str, Any]]
) -> dict[str, str] | None:
    try:
        response = await client.chat_postMessage(channel=channel, text=text, blocks=blocks or None)
    except SlackApiError as exc:
        log.warning("slack.assignment.post_failed channel=%s error=%s", channel, exc.response.get("error"))
        return None
    return {"channel": str(response["channel"]), "ts": str(response["ts"])}


async def _dm(
    client: AsyncWebClient, slack_user_id: str, *, text: str, blocks: list[dict[str, Any]]
) -> dict[str, str] | None:
    try:
        opened = await client.conversations_open(users=slack_user_id)
    except SlackApiError as exc:
        log.warning("slack.assignment.dm_failed user=%s error=%s", slack_user_id, exc.response.get("error"))
        return None
    return await _post(client, str(opened["channel"]["id"]), text=text, blocks=blocks)


async def post_for_approval(
    database: Database, client: AsyncWebClient, *, org_id: int, view: RequestView
) -> str:
    """Post a pending request to the approvals channel, or DM every manager while none is set (or the bot
    can't post there); records where, so the decision can update the messages. Returns where, for people."""
    async with database.uow(org_id) as session:
        settings = await service.load_settings(session, org_id=org_id)
        managers = await service.managers(session, org_id=org_id)
    text, blocks = approval_text(view), approval_request(view)
    messages: list[dict[str, str]] = []
    where = ""
    if settings.approvals_channel:
        posted = await _post(client, settings.approvals_channel, text=text, blocks=blocks)
        if posted is not None:
            messages.append(posted)
            where = f"in <#{settings.approvals_channel}>"
    if not messages:
        for manager in managers:
            if manager.slack_user_id:
                posted = await _dm(client, manager.slack_user_id, text=text, blocks=blocks)
                if posted is not None:
                    messages.append(posted)
        where = "sent to the managers by DM" + (
            "; an admin can set an approvals channel with `/lead admin approvals-channel #channel`"
            if not settings.approvals_channel
            else ""
        )
    async with database.uow(org_id) as session:
        await service.set_approval_messages(session, org_id=org_id, assignment_id=view.id, messages=messages)
    return where


async def settle_messages(client: AsyncWebClient, view: RequestView) -> None:
    """Replace the request's buttons by its status line and note the outcome in each thread."""
    blocks, note = approval_settled(view), thread_note(view)
    for message in view.approval_messages:
        channel, ts = message.get("channel"), message.get("ts")
        if not channel or not ts:
            continue
        try:
            await client.chat_update(channel=channel, ts=ts, text=approval_text(view), blocks=blocks)
            await client.chat_postMessage(channel=channel, thread_ts=ts, text=note)
        except SlackApiError as exc:
            log.warning(
                "slack.assignment.settle_failed channel=%s error=%s", channel, exc.response.get("error")
            )


async def tell_people(client: AsyncWebClient, view: RequestView, *, skip: int | None = None) -> None:
    """DM the requester, the old owner and the new owner (each once; not ``skip``, who saw it already)."""
    people = {}
    for person in (view.requested_by, view.from_user, view.to_user):
        if person is not None and person.slack_user_id and person.id != skip:
            people[person.id] = person
    if view.status == "expired":
        people = {k: v for k, v in people.items() if view.requested_by and k == view.requested_by.id}
    for person in people.values():
        assert person.slack_user_id is not None
        await _dm(
            client,
            person.slack_user_id,
            text=f"Lead #{view.lead_id}: reassignment {view.status}",
            blocks=settled_dm(view, recipient_id=person.id),
        )


def _involved(view: RequestView) -> list[int | None]:
    return [p.id if p else None for p in (view.requested_by, view.from_user, view.to_user, view.decided_by)]


async def after_settled(
    database: Database,
    cards: LeadCardCache | None,
    client: AsyncWebClient,
    *,
    org_id: int,
    view: RequestView,
    skip: int | None = None,
) -> None:
    if cards is not None:
        await cards.invalidate(view.lead_id)
    await settle_messages(client, view)
    await tell_people(client, view, skip=skip)
    await refresh_homes(database, client, org_id=org_id, user_ids=_involved(view), managers=True)


# --- verbs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assigned:
    """A committed reassignment or request, before anyone is told."""

    outcome: Any
    view: RequestView
    superseded: RequestView | None


async def assign(
    deps: SlackDeps, client: AsyncWebClient, actor: Actor, *, ref: str, to_slack_id: str, reason: str | None
) -> Answer:
    committed = await assign_commit(deps, client, actor, ref=ref, to_slack_id=to_slack_id, reason=reason)
    if isinstance(committed, Answer):
        return committed
    return await assign_notify(deps, client, actor, committed)


async def assign_commit(
    deps: SlackDeps, client: AsyncWebClient, actor: Actor, *, ref: str, to_slack_id: str, reason: str | None
) -> Assigned | Answer:
    """The database part of a reassignment (domain errors raise here, before any Slack post); an Answer
    when a request for the lead is already pending."""
    to_user_id = await _member(deps, client, actor, to_slack_id)
    try:
        async with deps.database.uow(actor.org_id) as session:
            user = await user_row(session, actor)
            lead = await resolve_lead(session, org_id=actor.org_id, ref=ref)
            outcome = await service.request(
                session,
                org_id=actor.org_id,
                lead_id=lead.id,
                to_user_id=to_user_id,
                actor=user,
                reason=reason,
            )
            view = await service.view(session, org_id=actor.org_id, assignment_id=outcome.assignment.id)
            superseded = (
                await service.view(session, org_id=actor.org_id, assignment_id=outcome.superseded.id)
                if isinstance(outcome, service.Reassigned) and outcome.superseded is not None
                else None
            )
    except service.DuplicatePending as exc:
        async with deps.database.uow(actor.org_id) as session:
            existing = await service.view(session, org_id=actor.org_id, assignment_id=exc.existing_id)
        return Answer(text=error_text(exc), blocks=duplicate_pending(existing))
    return Assigned(outcome=outcome, view=view, superseded=superseded)


async def assign_notify(deps: SlackDeps, client: AsyncWebClient, actor: Actor, done: Assigned) -> Answer:
    """Slack's part, after the commit: the approvals post or the DMs, App Homes, the answer."""
    view, superseded = done.view, done.superseded
    if isinstance(done.outcome, service.Requested):
        where = await post_for_approval(deps.database, client, org_id=actor.org_id, view=view)
        await refresh_homes(deps.database, client, org_id=actor.org_id, user_ids=[], managers=True)
        return Answer(text=f"Request #{view.id} sent", blocks=request_sent(view, where=where))
    await deps.cards.invalidate(view.lead_id)
    if superseded is not None:
        await settle_messages(client, superseded)
    await tell_people(client, view, skip=actor.user_id)
    await refresh_homes(
        deps.database, client, org_id=actor.org_id, user_ids=_involved(view), managers=superseded is not None
    )
    return Answer(text=reassigned_text(view))


async def decide(
    deps: SlackDeps, client: AsyncWebClient, actor: Actor, assignment_id: int, *, approve: bool
) -> Answer | None:
    """None when this click decided (the message itself shows it); otherwise what to tell the clicker."""
    if not actor.is_manager:
        raise PermissionDenied("only managers and admins decide reassignment requests")
    try:
        async with deps.database.uow(actor.org_id) as session:
            user = await user_row(session, actor)
            await service.decide(
                session, org_id=actor.org_id, assignment_id=assignment_id, actor=user, approve=approve
            )
            view = await service.view(session, org_id=actor.org_id, assignment_id=assignment_id)
    except service.AlreadyDecided as exc:
        who = user_ref(exc.decided_by.slack_user_id, exc.decided_by.name) if exc.decided_by else None
        by = f" by {who}" if who else ""
        return Answer(
            text=f":information_source: Request #{assignment_id} was already {exc.status}{by}. Nothing changed."
        )
    await after_settled(deps.database, deps.cards, client, org_id=actor.org_id, view=view)
    return None


async def cancel(deps: SlackDeps, client: AsyncWebClient, actor: Actor, assignment_id: int) -> Answer:
    async with deps.database.uow(actor.org_id) as session:
        user = await user_row(session, actor)
        await service.cancel(session, org_id=actor.org_id, assignment_id=assignment_id, actor=user)
        view = await service.view(session, org_id=actor.org_id, assignment_id=assignment_id)
    await settle_messages(client, view)
    await refresh_homes(deps.database, client, org_id=actor.org_id, user_ids=[actor.user_id], managers=True)
    return Answer(text=f":wastebasket: Cancelled request #{assignment_id} for lead #{view.lead_id}.")


async def admin(deps: SlackDeps, client: AsyncWebClient, actor: Actor, command: AdminCommand) -> Answer:
    if actor.role != "admin":
        raise PermissionDenied("`/lead admin` is for admins of this workspace's organization")
    target: int | None = None
    if isinstance(command, (AdminCapacity, AdminAway)) and command.slack_user_id:
        target = await _member(deps, client, actor, command.slack_user_id)
    async with deps.database.uow(actor.org_id) as session:
        user = await user_row(session, actor)
        org = actor.org_id
        if isinstance(command, AdminApprovalsChannel):
            await service.set_approvals_channel(
                session, org_id=org, actor=user, channel_id=command.channel_id
            )
            done = (
                f"Approval requests now go to <#{command.channel_id}>. Invite me there (`/invite @lma-bot`)."
                if command.channel_id
                else "No approvals channel: managers get requests by DM."
            )
        elif isinstance(command, AdminStrategy):
            await service.set_strategy(session, org_id=org, actor=user, strategy=command.strategy)
            done = f"Automatic assignment: *{command.strategy}*."
        elif isinstance(command, AdminCapacity):
            if target is None:
                await service.set_org_capacity(session, org_id=org, actor=user, capacity=command.capacity)
                done = f"Capacity per rep: *{command.capacity or 'no limit'}*."
            else:
                await service.set_user_capacity(
                    session, org_id=org, actor=user, user_id=target, capacity=command.capacity
                )
                done = f"Capacity of <@{command.slack_user_id}>: *{command.capacity or 'the team default'}*."
        elif isinstance(command, AdminAway):
            assert target is not None
            await service.set_away(session, org_id=org, actor=user, user_id=target, away=command.away)
            done = f"<@{command.slack_user_id}> is {'away: no new leads' if command.away else 'back: gets new leads again'}."
        elif isinstance(command, AdminExpiry):
            await service.set_expiry(session, org_id=org, actor=user, hours=command.hours)
            done = f"Reassignment requests now expire after *{command.hours} h*."
        else:
            assert isinstance(command, AdminSettings)
            done = ""
        overview = await service.overview(session, org_id=org)
    blocks = admin_settings(overview)
    if done:
        blocks.insert(
            0, {"type": "section", "text": {"type": "mrkdwn", "text": f":white_check_mark: {done}"}}
        )
    return Answer(text=done or "Assignment settings", blocks=blocks)


# --- listeners -----------------------------------------------------------------------------------------


def _ref(body: dict[str, Any]) -> AssignmentRef:
    return button_value(AssignmentRef, body)


def _selected_user(view: dict[str, Any]) -> str | None:
    element = view.get("state", {}).get("values", {}).get(Block.ASSIGNEE, {}).get(Block.ASSIGNEE, {})
    selected = element.get("selected_user")
    return str(selected) if selected else None


def _reason(view: dict[str, Any]) -> str | None:
    element = view.get("state", {}).get("values", {}).get(Block.REASON, {}).get(Block.REASON, {})
    return (element.get("value") or "").strip() or None


def register(app: AsyncApp, deps: SlackDeps) -> None:

    async def actor_for(body: dict[str, Any], client: AsyncWebClient) -> Actor:
        return await actor_for_payload(deps, client, body)

    async def decide_click(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        approve = body["actions"][0]["action_id"] == Action.LEAD_REASSIGN_APPROVE
        async with answer_errors(respond, what="assignment_decision"):
            ref = _ref(body)
            actor = await actor_for(body, client)
            answer = await decide(deps, client, actor, ref.assignment_id, approve=approve)
            if answer is not None:
                if body.get("response_url"):
                    await respond(text=answer.text, **EPHEMERAL)
                else:  # a click in the App Home: no response_url; refresh it and tell by DM
                    await refresh_homes(
                        deps.database, client, org_id=actor.org_id, user_ids=[actor.user_id], managers=False
                    )
                    await _dm(client, actor.slack_user_id, text=answer.text, blocks=[])

    async def cancel_click(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        async with answer_errors(respond, what="assignment_cancel"):
            ref = _ref(body)
            actor = await actor_for(body, client)
            answer = await cancel(deps, client, actor, ref.assignment_id)
            await respond(text=answer.text, replace_original=True)

    async def open_form(body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        async with answer_errors(respond, what="reassign_form"):
            lead_id = button_value(LeadRef, body, again="open the lead again").lead_id
            actor = await actor_for(body, client)
            card = await deps.cards.get(deps.database, org_id=actor.org_id, lead_id=lead_id)
            owner = user_ref(card.owner.slack_user_id, card.owner.name) if card.owner else None
            context = ModalContext(channel_id=(body.get("channel") or {}).get("id"), lead_id=lead_id)
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=reassign_modal(
                    context, lead_name=card.name, owner=owner, needs_approval=not actor.is_manager
                ),
            )

    @app.view(View.REASSIGN)
    async def submit(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        chosen = _selected_user(view)
        try:
            context = ModalContext.model_validate_json(view.get("private_metadata") or "{}")
        except ValidationError:
            context = ModalContext()
        if not chosen or context.lead_id is None:
            await ack(response_action="errors", errors={Block.ASSIGNEE: "choose the new owner"})
            return
        try:
            actor = await actor_for(body, client)
            committed = await assign_commit(
                deps, client, actor, ref=str(context.lead_id), to_slack_id=chosen, reason=_reason(view)
            )
        except DomainError as exc:
            await ack(response_action="errors", errors={Block.ASSIGNEE: error_text(exc)})
            return
        await ack()  # the form closes now; Slack posts (approvals, DMs, App Homes) follow
        answer = (
            committed
            if isinstance(committed, Answer)
            else await assign_notify(deps, client, actor, committed)
        )
        await client.chat_postMessage(channel=actor.slack_user_id, text=answer.text, blocks=answer.blocks)

    app.action(Action.LEAD_REASSIGN_APPROVE)(ack=just_ack, lazy=[decide_click])
    app.action(Action.LEAD_REASSIGN_REJECT)(ack=just_ack, lazy=[decide_click])
    app.action(Action.LEAD_REASSIGN_CANCEL)(ack=just_ack, lazy=[cancel_click])
    app.action(Action.LEAD_REASSIGN)(ack=just_ack, lazy=[open_form])


__all__: Sequence[str] = ["admin", "assign", "cancel", "decide", "register"]
