"""What an n8n callback does, once stored: execution status updates and lead actions.

Each function runs inside the event's savepoint (see :mod:`lma_bot.webhooks.service`); a
:class:`~lma_bot.errors.DomainError` marks the event failed with its message (replayable).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.errors import NotFound
from lma_bot.jsonschemas import validate_document
from lma_bot.leads.service import DuplicateLead, change_status, create_lead, resolve_lead
from lma_bot.models import Communication, User, WebhookEvent, Workflow, WorkflowExecution
from lma_bot.notes.service import add_note
from lma_bot.scoring import engine as scoring
from lma_bot.users import repository as users
from lma_bot.webhooks import n8n
from lma_bot.webhooks.service import Outcome

TERMINAL_EXECUTION = frozenset({"success", "error", "cancelled"})


async def process(session: AsyncSession, org_id: int, event: WebhookEvent) -> Outcome:
    message = n8n.MESSAGE.validate_python(event.payload)
    if isinstance(message, n8n.ExecutionUpdate):
        return await _execution(session, org_id, message.execution)
    if isinstance(message, n8n.CreateLead):
        try:
            lead = await create_lead(session, org_id=org_id, data=message.lead)
        except DuplicateLead as exc:
            return Outcome("ignored", {exc.existing_id}, note=str(exc))
        return Outcome("processed", {lead.id})
    lead = await resolve_lead(session, org_id=org_id, ref=message.lead.ref)
    if isinstance(message, n8n.UpdateLead):
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for name in message.changes.model_fields_set:
            value = getattr(message.changes, name)
            if name == "tags":
                value = list(dict.fromkeys(t.strip().lower() for t in value or []))
            if name == "custom_fields":
                value = {**lead.custom_fields, **(value or {})}
                validate_document("leads.custom_fields", value)
            before[name], after[name] = getattr(lead, name), value
            setattr(lead, name, value)
        await session.flush()
        await record(
            session,
            org_id=org_id,
            lead_id=lead.id,
            activity_type="lead.updated",
            entity_type="lead",
            entity_id=lead.id,
            before=before,
            after=after,
            metadata={"source": "n8n", "webhook_event_id": event.id},
        )
        await scoring.lead_changed(session, org_id=org_id, lead_id=lead.id)
    elif isinstance(message, n8n.SetStatus):
        await change_status(
            session,
            org_id=org_id,
            lead_id=lead.id,
            status=message.status,
            actor_id=None,
            reason=message.reason,
        )
    elif isinstance(message, n8n.AddNote):
        author = await _user(session, org_id, message.note.author_email)
        await add_note(
            session,
            org_id=org_id,
            lead_id=lead.id,
            author_id=author.id if author else None,
            content=message.note.content,
            mentioned=[],
            is_private=message.note.is_private,
        )
    elif isinstance(message, n8n.LogCommunication):
        body = message.communication
        user = await _user(session, org_id, body.user_email)
        when = body.occurred_at or dt.datetime.now(dt.UTC)
        comm = Communication(
            organization_id=org_id,
            lead_id=lead.id,
            user_id=user.id if user else None,
            communication_type=body.type,
            direction=body.direction,
            subject=body.subject,
            content=body.content,
            status="completed",
            completed_at=when,
            message_id=body.message_id,
            metadata_={"source": "n8n", "webhook_event_id": event.id},
        )
        session.add(comm)
        await session.flush()
        await record(
            session,
            org_id=org_id,
            actor_id=user.id if user else None,
            lead_id=lead.id,
            activity_type="communication.logged",
            entity_type="communication",
            entity_id=comm.id,
            after={"type": body.type, "direction": body.direction, "subject": body.subject},
        )
    elif isinstance(message, n8n.ScoreEvent):
        await record(
            session,
            org_id=org_id,
            lead_id=lead.id,
            activity_type=f"event.{message.event.name}"[:100],
            entity_type="lead",
            entity_id=lead.id,
            after=message.event.properties,
            metadata={"source": "n8n", "webhook_event_id": event.id},
        )
        await scoring.record_event(
            session,
            org_id=org_id,
            lead_id=lead.id,
            event_type=message.event.name,
            dedupe_key=f"webhook:{event.id}",
            occurred_at=message.event.occurred_at,
            properties=message.event.properties,
        )
    return Outcome("processed", {lead.id})


async def _user(session: AsyncSession, org_id: int, email: str | None) -> User | None:
    if not email:
        return None
    user = (await session.execute(users.by_email(org_id, email))).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user with the email {email} in this organization")
    return user


async def _execution(session: AsyncSession, org_id: int, info: n8n.ExecutionInfo) -> Outcome:
    """Monotonic: once success, error or cancelled, a late running/waiting changes nothing."""
    row = await _find_execution(session, org_id, info)
    if row.status in TERMINAL_EXECUTION:
        if row.status == info.status:
            return Outcome("ignored", note=f"execution already {row.status}")
        return Outcome("ignored", note=f"execution already {row.status}; {info.status} arrived late")
    previous = row.status
    row.status = info.status
    row.n8n_execution_id = info.id
    if info.error is not None:
        row.error_message = info.error
    if info.data:
        row.output_data = info.data
    if info.status in TERMINAL_EXECUTION:
        row.finished_at = info.finished_at or dt.datetime.now(dt.UTC)
    await session.flush()
    await record(
        session,
        org_id=org_id,
        lead_id=row.lead_id,
        activity_type="workflow.execution_updated",
        entity_type="workflow_execution",
        entity_id=row.id,
        before={"status": previous},
        after={"status": info.status},
    )
    return Outcome("processed", {row.lead_id} if row.lead_id else set())


async def _find_execution(session: AsyncSession, org_id: int, info: n8n.ExecutionInfo) -> WorkflowExecution:
    base = select(WorkflowExecution).where(WorkflowExecution.organization_id == org_id).with_for_update()
    if info.workflow_execution_id is not None:
        row = (await session.execute(base.where(WorkflowExecution.id == info.workflow_execution_id))).scalar()
        if row is None:
            raise NotFound(f"workflow execution {info.workflow_execution_id} not found")
        return row
    row = (await session.execute(base.where(WorkflowExecution.n8n_execution_id == info.id))).scalar()
    if row is not None:
        return row
    if info.workflow_id is None:
        raise NotFound(
            f"no workflow execution with n8n id {info.id}; send workflow_execution_id or workflow_id"
        )
    workflow = (
        await session.execute(
            select(Workflow).where(
                Workflow.organization_id == org_id, Workflow.n8n_workflow_id == info.workflow_id
            )
        )
    ).scalar()
    if workflow is None:
        raise NotFound(f"no workflow with n8n id {info.workflow_id}")
    lead_id = None
    if info.lead is not None:
        lead_id = (await resolve_lead(session, org_id=org_id, ref=info.lead.ref)).id
    row = WorkflowExecution(
        organization_id=org_id,
        workflow_id=workflow.id,
        lead_id=lead_id,
        n8n_execution_id=info.id,
        status="pending",
        trigger_event="n8n",
    )
    session.add(row)
    await session.flush()
    return row
