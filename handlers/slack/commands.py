"""`/lead`: the ack listener parses the text and answers usage mistakes at once (no database, no Slack
call, so it is always within the 3 s); the lazy listener does the work and answers via ``response_url``."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack import assignments as assignment_flows
from handlers.slack import flows, scoring
from handlers.slack import reminders as reminder_flows
from handlers.slack import workflows as workflow_flows
from handlers.slack.actor import Actor, resolve_actor
from handlers.slack.blocks.card import lead_card
from handlers.slack.blocks.help import help_blocks
from handlers.slack.blocks.lists import lead_page
from handlers.slack.blocks.messages import add_mentioned_offer, duplicate_lead, lead_created
from handlers.slack.blocks.modals import create_lead_modal
from handlers.slack.blocks.workflows import integrations_admin, run_result, run_started, workflows_list
from handlers.slack.deps import SlackDeps
from handlers.slack.errors import answer_errors, usage_text
from handlers.slack.grammar import (
    AdminApprovalsChannel,
    AdminAway,
    AdminCapacity,
    AdminExpiry,
    AdminIntegrations,
    AdminSettings,
    AdminStrategy,
    Assign,
    AssignCancel,
    Command,
    Create,
    Help,
    ListLeads,
    Note,
    Remind,
    RemindCancel,
    RemindList,
    RuleActive,
    RuleForm,
    Rules,
    RunWorkflow,
    Score,
    ScoreAdjust,
    ScoreLock,
    Show,
    Status,
    UsageError,
    Workflows,
    parse,
)
from handlers.slack.ids import ModalContext
from handlers.slack.reminders import split_when
from handlers.slack.replies import EPHEMERAL
from lma_bot.errors import parse_model
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import DuplicateLead

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def ack_lead(ack: AsyncAck, command: dict[str, Any]) -> None:
        try:
            parse(command.get("text", ""))
        except UsageError as exc:
            await ack(text=usage_text(exc), response_type="ephemeral")
            return
        await ack()

    async def command_actor(command: dict[str, Any], client: AsyncWebClient) -> Actor:
        return await resolve_actor(
            deps,
            client,
            team_id=command["team_id"],
            team_domain=command.get("team_domain"),
            slack_user_id=command["user_id"],
        )

    async def run_lead(command: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        try:
            parsed = parse(command.get("text", ""))
        except UsageError:
            return  # answered by the ack
        if isinstance(parsed, RuleForm):
            # The form first (the trigger_id expires 3 s after the command); only admins get it.
            async with answer_errors(respond, what="rule_form"):
                actor = await command_actor(command, client)
                await scoring.open_rule_form(deps, client, actor, command["trigger_id"], parsed.rule_id)
            return
        if isinstance(parsed, Create) and parsed.email is None:
            # Open the form first: the trigger_id expires 3 s after the command.
            await client.views_open(
                trigger_id=command["trigger_id"],
                view=create_lead_modal(ModalContext(channel_id=command.get("channel_id"))),
            )
            return
        async with answer_errors(respond, what="command"):
            actor = await command_actor(command, client)
            await _dispatch(deps, client, respond, actor, parsed)

    app.command("/lead")(ack=ack_lead, lazy=[run_lead])


async def _dispatch(
    deps: SlackDeps, client: AsyncWebClient, respond: AsyncRespond, actor: Actor, parsed: Command
) -> None:
    if isinstance(parsed, Help):
        await respond(text="How to use /lead", blocks=help_blocks(role=actor.role), **EPHEMERAL)
    elif isinstance(parsed, Create):
        await _create(deps, respond, actor, parsed)
    elif isinstance(parsed, Show):
        lead_id = await flows.lead_id_for(deps, actor, parsed.ref)
        card, notes = await flows.card_for(deps, actor, lead_id)
        await respond(text=f"Lead #{card.id} {card.name}", blocks=lead_card(card, notes), **EPHEMERAL)
    elif isinstance(parsed, ListLeads):
        page = await flows.page(deps, actor, parsed.query)
        await respond(text="Leads", blocks=lead_page(page), **EPHEMERAL)
    elif isinstance(parsed, Status):
        lead_id = await flows.lead_id_for(deps, actor, parsed.ref)
        text = await flows.change_status(deps, actor, lead_id, parsed.status, parsed.reason)
        await respond(text=text, **EPHEMERAL)
    elif isinstance(parsed, Note):
        lead_id = await flows.lead_id_for(deps, actor, parsed.ref)
        outcome = await flows.add_note(deps, client, actor, lead_id, parsed.text, private=parsed.private)
        await respond(text=note_confirmation(outcome, private=parsed.private), **EPHEMERAL)
        if outcome.unknown:
            await respond(text="Add them as users?", blocks=add_mentioned_offer(outcome.unknown), **EPHEMERAL)
    elif isinstance(parsed, Remind):
        lead_id = await flows.lead_id_for(deps, actor, parsed.ref)
        due, message = split_when(parsed.words, now=dt.datetime.now(dt.UTC), tz=actor.timezone)
        done = await reminder_flows.set_reminder(deps, actor, lead_id, due, message)
        await respond(text=reminder_flows.confirmation(done), **EPHEMERAL)
    elif isinstance(parsed, RemindList):
        await respond(text="Your reminders", blocks=await reminder_flows.list_text(deps, actor), **EPHEMERAL)
    elif isinstance(parsed, RemindCancel):
        await respond(text=await reminder_flows.cancel(deps, actor, parsed.reminder_id), **EPHEMERAL)
    elif isinstance(parsed, Score):
        lead_id = await flows.lead_id_for(deps, actor, parsed.ref)
        await respond(
            text=f"Score of lead #{lead_id}",
            blocks=await scoring.breakdown(deps, actor, lead_id),
            **EPHEMERAL,
        )
    elif isinstance(parsed, ScoreAdjust):
        lead_id = await flows.lead_id_for(deps, actor, parsed.ref)
        await respond(
            text=await scoring.adjust(deps, actor, lead_id, parsed.amount, parsed.reason), **EPHEMERAL
        )
    elif isinstance(parsed, ScoreLock):
        lead_id = await flows.lead_id_for(deps, actor, parsed.ref)
        await respond(text=await scoring.set_lock(deps, actor, lead_id, lock=parsed.lock), **EPHEMERAL)
    elif isinstance(parsed, Rules):
        await respond(text="Scoring rules", blocks=await scoring.rules_list(deps, actor), **EPHEMERAL)
    elif isinstance(parsed, RuleActive):
        rule = await scoring.set_active(deps, client, actor, parsed.rule_id, active=parsed.active)
        await respond(text=rule, **EPHEMERAL)
    elif isinstance(parsed, Workflows):
        items = await workflow_flows.list_workflows(deps, actor)
        await respond(text="Workflows", blocks=workflows_list(items, can_run=actor.is_manager), **EPHEMERAL)
    elif isinstance(parsed, RunWorkflow):
        await _run_workflow(deps, respond, actor, parsed)
    elif isinstance(parsed, AdminIntegrations):
        overview = await workflow_flows.integrations(deps, actor)
        await respond(text="Integrations", blocks=integrations_admin(overview), **EPHEMERAL)
    elif isinstance(parsed, Assign):
        answer = await assignment_flows.assign(
            deps, client, actor, ref=parsed.ref, to_slack_id=parsed.slack_user_id, reason=parsed.reason
        )
        await respond(text=answer.text, blocks=answer.blocks, **EPHEMERAL)
    elif isinstance(parsed, AssignCancel):
        answer = await assignment_flows.cancel(deps, client, actor, parsed.assignment_id)
        await respond(text=answer.text, **EPHEMERAL)
    elif isinstance(
        parsed,
        AdminSettings | AdminApprovalsChannel | AdminStrategy | AdminCapacity | AdminAway | AdminExpiry,
    ):
        answer = await assignment_flows.admin(deps, client, actor, parsed)
        await respond(text=answer.text, blocks=answer.blocks, **EPHEMERAL)


async def _run_workflow(deps: SlackDeps, respond: AsyncRespond, actor: Actor, parsed: RunWorkflow) -> None:
    started = await workflow_flows.run_workflow(deps, actor, parsed.workflow_id, parsed.ref)
    await respond(
        text=run_started(
            started.execution_id,
            started.workflow_id,
            started.workflow_name,
            started.lead_id,
            started.lead_name,
        ),
        **EPHEMERAL,
    )
    result = await workflow_flows.await_outcome(deps, actor, started)
    await respond(
        text=run_result(
            result.execution_id,
            result.workflow_name,
            status=result.status,
            retry_count=result.retry_count,
            response_status=result.response_status,
            error=result.error,
            settled=result.settled,
        ),
        **EPHEMERAL,
    )


async def _create(deps: SlackDeps, respond: AsyncRespond, actor: Actor, parsed: Create) -> None:
    first, _, last = (parsed.name or "").partition(" ")
    data = parse_model(
        LeadCreate,
        {
            "email": parsed.email,
            "first_name": first or None,
            "last_name": last or None,
            "company": parsed.company,
            "source": parsed.source or "slack",
            "tags": parsed.tags,
        },
    )
    try:
        lead_id, name = await flows.create(deps, actor, data)
    except DuplicateLead as exc:
        await respond(
            text=str(exc),
            blocks=duplicate_lead(exc.existing_id, exc.existing_name, data.email or ""),
            **EPHEMERAL,
        )
        return
    await respond(text=f"Created lead #{lead_id}", blocks=lead_created(lead_id, name), **EPHEMERAL)


def note_confirmation(outcome: flows.NoteOutcome, *, private: bool) -> str:
    kind = ":lock: Private note" if private else ":memo: Note"
    told = f" Notified {', '.join(f'<@{s}>' for s in outcome.notified)}." if outcome.notified else ""
    return f"{kind} added to *#{outcome.lead_id} {outcome.lead_name}*.{told}"
