"""Workflows: create and list them, turn lead events into executions (the outbox), and the claim/record
verbs the dispatcher uses.

**The outbox.** A lead event (created, status changed, assigned, score crossed a threshold, note added) runs
:func:`emit` inside the caller's unit of work: each matching active workflow gets a ``workflow_executions``
row (``status='pending'``, the event's lead snapshot, actor and changes in ``input_data``) in the same
transaction as the lead change. Nothing is sent yet; the ids are noted on the session
(``session.info[OUTBOX_KEY]``) and handed to the in-process dispatcher after the commit (see
:mod:`lma_bot.workflows.dispatch`). If the process dies first, the sweeper finds the pending row. So an
event is never lost, and a rolled-back change never triggers anything.

**Claims.** A pending row is sent by whoever claims it: :func:`claim` sets ``lease_expires_at`` only if no
live lease exists (``FOR UPDATE SKIP LOCKED``), so two processes never send the same attempt; a crash mid-
attempt leaves a lease that expires and the row is swept again (delivery is at least once: n8n may dedupe
on ``execution_id``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.errors import InvalidInput, NotFound
from lma_bot.jsonschemas import validate_document
from lma_bot.models import Integration, Lead, Organization, User, Workflow, WorkflowExecution
from lma_bot.workflows.conditions import LeadFacts, Trigger, matches, parse_trigger, validate_conditions
from lma_bot.workflows.payloads import WorkflowRef, actor_view, lead_snapshot
from lma_bot.workflows.ssrf import TargetPolicy, check_url

log = logging.getLogger(__name__)

OUTBOX_KEY = "lma.workflow_outbox"
LAST_EXECUTIONS = 3


# ---------------------------------------------------------------- policy


def _truthy(value: object) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


async def target_policy(
    session: AsyncSession, *, org_id: int, integration: Integration | None
) -> TargetPolicy:
    """Self-hosted (private) targets are allowed when the organization setting
    ``allow_private_workflow_targets`` or the n8n integration's ``allow_private_targets`` is true."""
    org = await session.get(Organization, org_id)
    allowed = bool(org is not None and _truthy(org.settings.get("allow_private_workflow_targets", False)))
    if integration is not None and _truthy(integration.configuration.get("allow_private_targets", False)):
        allowed = True
    return TargetPolicy(allow_self_hosted=allowed)


async def _n8n_integration(session: AsyncSession, org_id: int, integration_id: int | None) -> Integration:
    stmt = select(Integration).where(
        Integration.organization_id == org_id, Integration.provider_name == "n8n"
    )
    if integration_id is not None:
        row = (await session.execute(stmt.where(Integration.id == integration_id))).scalar_one_or_none()
        if row is None:
            raise NotFound(f"n8n integration {integration_id} not found")
        return row
    row = (
        await session.execute(stmt.where(Integration.status == "active").order_by(Integration.id).limit(1))
    ).scalar_one_or_none()
    if row is None:
        raise InvalidInput(
            f"organization {org_id} has no n8n integration to sign with; first run "
            f"`lma-bot integrations add --org {org_id} --provider n8n`",
            field="integration",
        )
    return row


# ---------------------------------------------------------------- workflows


@dataclass(frozen=True)
class ExecutionView:
    id: int
    workflow_id: int
    status: str
    trigger_event: str | None
    lead_id: int | None
    lead_name: str | None
    retry_count: int
    response_status: int | None
    error_message: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    next_attempt_at: dt.datetime | None


@dataclass(frozen=True)
class WorkflowView:
    id: int
    name: str
    trigger: str
    conditions: dict[str, Any]
    url_host: str
    n8n_workflow_id: str
    is_active: bool
    created_at: dt.datetime
    last_executions: list[ExecutionView] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "trigger": self.trigger,
            "conditions": self.conditions,
            "url_host": self.url_host,
            "n8n_workflow_id": self.n8n_workflow_id,
            "is_active": self.is_active,
            "created_at": self.created_at.isoformat(),
            "last_executions": [
                {
                    "id": e.id,
                    "status": e.status,
                    "event": e.trigger_event,
                    "lead_id": e.lead_id,
                    "retry_count": e.retry_count,
                    "response_status": e.response_status,
                    "error": e.error_message,
                    "started_at": e.started_at.isoformat(),
                }
                for e in self.last_executions
            ],
        }


def _trigger_name(workflow: Workflow) -> str:
    trigger = Trigger.from_db(workflow.trigger_type)
    return trigger.value if trigger else (workflow.trigger_type or "manual")


async def create_workflow(
    session: AsyncSession,
    *,
    org_id: int,
    name: str,
    trigger: str,
    url: str,
    conditions: dict[str, Any] | None = None,
    n8n_workflow_id: str | None = None,
    integration_id: int | None = None,
    description: str | None = None,
    actor_id: int | None = None,
    resolver: AbstractResolver | None = None,
) -> Workflow:
    """Validate everything (name, trigger, conditions, the n8n integration, the URL against SSRF), then insert."""
    title = (name or "").strip()
    if not title or len(title) > 255:
        raise InvalidInput("a workflow needs a name of 1 to 255 characters", field="name")
    kind = parse_trigger(trigger)
    checked_conditions = validate_conditions(kind, conditions if conditions is not None else {})
    integration = await _n8n_integration(session, org_id, integration_id)
    policy = await target_policy(session, org_id=org_id, integration=integration)
    target = await check_url(url, policy, resolver)
    external_id = (n8n_workflow_id or "").strip() or _default_n8n_id(target.url)
    if len(external_id) > 255:
        raise InvalidInput("the n8n workflow id is longer than 255 characters", field="n8n_workflow_id")
    taken = (
        await session.execute(
            select(Workflow.id).where(
                Workflow.organization_id == org_id, Workflow.n8n_workflow_id == external_id
            )
        )
    ).scalar_one_or_none()
    if taken is not None:
        raise InvalidInput(
            f"workflow {taken} already uses the n8n workflow id {external_id!r}; pass another --n8n-id",
            field="n8n_workflow_id",
        )
    configuration = {"integration_id": integration.id}
    validate_document("workflows.configuration", configuration)
    workflow = Workflow(
        organization_id=org_id,
        n8n_workflow_id=external_id,
        name=title,
        description=description,
        category="other",
        trigger_type=kind.db,
        trigger_conditions=checked_conditions,
        configuration=configuration,
        webhook_url=target.url,
        is_active=True,
        created_by=actor_id,
    )
    session.add(workflow)
    await session.flush()
    await record(
        session,
        org_id=org_id,
        actor_id=actor_id,
        activity_type="workflow.created",
        entity_type="workflow",
        entity_id=workflow.id,
        after={"name": title, "trigger": kind.value, "conditions": checked_conditions, "host": target.host},
    )
    return workflow


def _default_n8n_id(url: str) -> str:
    """n8n webhook URLs end in the webhook path (``/webhook/<uuid or name>``): a good default id."""
    path = urlsplit(url).path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    return last or urlsplit(url).netloc


async def get_workflow(session: AsyncSession, *, org_id: int, workflow_id: int) -> Workflow:
    row = await session.get(Workflow, (org_id, workflow_id))
    if row is None:
        raise NotFound(f"workflow {workflow_id} not found")
    return row


async def list_workflows(
    session: AsyncSession, *, org_id: int, executions: int = LAST_EXECUTIONS
) -> list[WorkflowView]:
    """The organization's workflows, newest first, each with its latest ``executions`` runs."""
    workflows = list(
        (
            await session.execute(
                select(Workflow).where(Workflow.organization_id == org_id).order_by(Workflow.id.desc())
            )
        ).scalars()
    )
    latest: dict[int, list[ExecutionView]] = {w.id: [] for w in workflows}
    if workflows and executions > 0:
        ranked = (
            select(
                WorkflowExecution,
                func.row_number()
                .over(
                    partition_by=WorkflowExecution.workflow_id,
                    order_by=(WorkflowExecution.started_at.desc(), WorkflowExecution.id.desc()),
                )
                .label("rank"),
            )
            .where(WorkflowExecution.organization_id == org_id)
            .subquery()
        )
        execution = ranked.c
        rows = await session.execute(
            select(ranked, Lead.first_name, Lead.last_name, Lead.email)
            .select_from(ranked)
            .outerjoin(Lead, and_(Lead.organization_id == org_id, Lead.id == execution.lead_id))
            .where(execution.rank <= executions)
            .order_by(execution.workflow_id, execution.rank)
        )
        for row in rows:
            name = " ".join(p for p in (row.first_name, row.last_name) if p) or row.email
            latest.setdefault(row.workflow_id, []).append(
                ExecutionView(
                    id=row.id,
                    workflow_id=row.workflow_id,
                    status=row.status,
                    trigger_event=row.trigger_event,
                    lead_id=row.lead_id,
                    lead_name=name,
                    retry_count=row.retry_count,
                    response_status=row.response_status,
                    error_message=row.error_message,
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
                )
            )
    return [
        WorkflowView(
            id=w.id,
            name=w.name,
            trigger=_trigger_name(w),
            conditions=dict(w.trigger_conditions),
            url_host=urlsplit(w.webhook_url or "").netloc,
            n8n_workflow_id=w.n8n_workflow_id,
            is_active=w.is_active,
            created_at=w.created_at,
            last_executions=latest.get(w.id, []),
        )
        for w in workflows
    ]


# ---------------------------------------------------------------- events -> executions (the outbox)


def _note_outbox(session: AsyncSession, org_id: int, execution_id: int) -> None:
    outbox: list[tuple[int, int]] = session.info.setdefault(OUTBOX_KEY, [])
    outbox.append((org_id, execution_id))


async def _write_execution(
    session: AsyncSession,
    *,
    org_id: int,
    workflow: Workflow,
    event: str,
    lead: Lead | None,
    actor_id: int | None,
    changes: dict[str, Any],
    occurred_at: dt.datetime,
) -> WorkflowExecution:
    actor = await session.get(User, (org_id, actor_id)) if actor_id is not None else None
    row = WorkflowExecution(
        organization_id=org_id,
        workflow_id=workflow.id,
        lead_id=lead.id if lead is not None else None,
        status="pending",
        trigger_event=event,
        input_data={
            "event": event,
            "occurred_at": occurred_at.isoformat(),
            "lead": lead_snapshot(lead) if lead is not None else None,
            "actor": actor_view(actor),
            "changes": changes,
        },
        triggered_by=actor_id,
    )
    session.add(row)
    await session.flush()
    _note_outbox(session, org_id, row.id)
    return row


async def emit(
    session: AsyncSession,
    *,
    org_id: int,
    trigger: Trigger,
    lead: Lead,
    actor_id: int | None,
    changes: dict[str, Any] | None = None,
    previous_status: str | None = None,
    previous_score: int | None = None,
) -> list[int]:
    """Write a pending execution for every active workflow of ``trigger`` whose conditions match ``lead``
    (after the change); returns their ids. Call it inside the unit of work that made the change."""
    workflows = list(
        (
            await session.execute(
                select(Workflow).where(
                    Workflow.organization_id == org_id,
                    Workflow.trigger_type == trigger.db,
                    Workflow.is_active.is_(True),
                )
            )
        ).scalars()
    )
    if not workflows:
        return []
    await session.refresh(lead)  # server-side values (updated_at) for the snapshot
    facts = LeadFacts(
        status=lead.status,
        source=lead.source,
        tags=list(lead.tags or []),
        score=lead.score,
        previous_status=previous_status,
        previous_score=previous_score,
    )
    now = dt.datetime.now(dt.UTC)
    ids = []
    for workflow in workflows:
        if not matches(workflow.trigger_conditions, facts):
            continue
        row = await _write_execution(
            session,
            org_id=org_id,
            workflow=workflow,
            event=trigger.event,
            lead=lead,
            actor_id=actor_id,
            changes=changes or {},
            occurred_at=now,
        )
        ids.append(row.id)
    if ids:
        log.info("workflows.triggered org=%s event=%s executions=%s", org_id, trigger.event, ids)
    return ids


async def lead_created(session: AsyncSession, *, org_id: int, lead: Lead, actor_id: int | None) -> list[int]:
    return await emit(session, org_id=org_id, trigger=Trigger.LEAD_CREATED, lead=lead, actor_id=actor_id)


async def status_changed(
    session: AsyncSession, *, org_id: int, lead: Lead, previous: str, actor_id: int | None, reason: str | None
) -> list[int]:
    changes: dict[str, Any] = {"status": {"from": previous, "to": lead.status}}
    if reason:
        changes["reason"] = reason
    return await emit(
        session,
        org_id=org_id,
        trigger=Trigger.STATUS_CHANGED,
        lead=lead,
        actor_id=actor_id,
        changes=changes,
        previous_status=previous,
    )


async def lead_assigned(
    session: AsyncSession, *, org_id: int, lead: Lead, previous_owner_id: int | None, actor_id: int | None
) -> list[int]:
    changes = {"assigned_to_id": {"from": previous_owner_id, "to": lead.assigned_to_id}}
    return await emit(
        session, org_id=org_id, trigger=Trigger.ASSIGNED, lead=lead, actor_id=actor_id, changes=changes
    )


async def score_changed(
    session: AsyncSession, *, org_id: int, lead: Lead, previous_score: int, actor_id: int | None = None
) -> list[int]:
    """Fires ``score_threshold`` workflows whose threshold the score just crossed upwards."""
    if lead.score <= previous_score:
        return []
    changes = {"score": {"from": previous_score, "to": lead.score}}
    return await emit(
        session,
        org_id=org_id,
        trigger=Trigger.SCORE_THRESHOLD,
        lead=lead,
        actor_id=actor_id,
        changes=changes,
        previous_score=previous_score,
    )


async def note_added(
    session: AsyncSession,
    *,
    org_id: int,
    lead: Lead,
    note_id: int,
    content: str,
    is_private: bool,
    actor_id: int | None,
) -> list[int]:
    """Private notes travel without their text (the payload leaves our access rules behind)."""
    note: dict[str, Any] = {"id": note_id, "is_private": is_private}
    if not is_private:
        note["content"] = content
    return await emit(
        session,
        org_id=org_id,
        trigger=Trigger.NOTE_ADDED,
        lead=lead,
        actor_id=actor_id,
        changes={"note": note},
    )


async def run_manually(
    session: AsyncSession, *, org_id: int, workflow_id: int, lead: Lead, actor_id: int | None
) -> int:
    """A pending execution of ``workflow_id`` for ``lead`` (even if the workflow is paused); its id."""
    workflow = await get_workflow(session, org_id=org_id, workflow_id=workflow_id)
    await session.refresh(lead)
    row = await _write_execution(
        session,
        org_id=org_id,
        workflow=workflow,
        event=Trigger.MANUAL.event,
        lead=lead,
        actor_id=actor_id,
        changes={"trigger": _trigger_name(workflow)},
        occurred_at=dt.datetime.now(dt.UTC),
    )
    await record(
        session,
        org_id=org_id,
        actor_id=actor_id,
        lead_id=lead.id,
        activity_type="workflow.run_requested",
        entity_type="workflow_execution",
        entity_id=row.id,
        after={"workflow_id": workflow.id},
    )
    return row.id


async def get_execution(session: AsyncSession, *, org_id: int, execution_id: int) -> WorkflowExecution:
    row = await session.get(WorkflowExecution, (org_id, execution_id))
    if row is None:
        raise NotFound(f"workflow execution {execution_id} not found")
    return row


# ---------------------------------------------------------------- claims and outcomes (the dispatcher's verbs)


@dataclass(frozen=True)
class Claimed:
    """Everything one attempt needs, read under the claim."""

    organization_id: int
    execution_id: int
    attempt: int  # 1 for the first send
    url: str
    event: str
    workflow: WorkflowRef
    input_data: dict[str, Any]
    encrypted_secrets: str | None
    policy: TargetPolicy
    problem: str | None = None  # a reason not to send at all (the integration is gone)


def _claimable(now: Any) -> Any:
    return and_(
        WorkflowExecution.status == "pending",
        or_(WorkflowExecution.lease_expires_at.is_(None), WorkflowExecution.lease_expires_at < now),
    )


async def claim(
    session: AsyncSession, *, org_id: int, execution_id: int, lease_seconds: float
) -> Claimed | None:
    """Take the lease on a pending execution for one attempt; None if it is gone, done, or held."""
    row = (
        await session.execute(
            select(WorkflowExecution)
            .where(
                WorkflowExecution.organization_id == org_id,
                WorkflowExecution.id == execution_id,
                _claimable(func.now()),
            )
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return await _lease(session, row, lease_seconds)


async def claim_due(
    session: AsyncSession, *, org_id: int, lease_seconds: float, limit: int = 50
) -> list[Claimed]:
    """The sweeper's claim: pending executions that are due and not held by a live lease. Rows another
    transaction is claiming right now are skipped (``SKIP LOCKED``), and a claimed row's lease keeps every
    other sweeper off it after this transaction commits."""
    rows = list(
        (
            await session.execute(
                select(WorkflowExecution)
                .where(
                    WorkflowExecution.organization_id == org_id,
                    _claimable(func.now()),
                    WorkflowExecution.next_attempt_at <= func.now(),
                )
                .order_by(WorkflowExecution.next_attempt_at, WorkflowExecution.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    return [await _lease(session, row, lease_seconds) for row in rows]


async def _lease(session: AsyncSession, row: WorkflowExecution, lease_seconds: float) -> Claimed:
    org_id = row.organization_id
    await session.execute(
        update(WorkflowExecution)
        .where(WorkflowExecution.organization_id == org_id, WorkflowExecution.id == row.id)
        .values(lease_expires_at=func.now() + dt.timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    workflow = await session.get(Workflow, (org_id, row.workflow_id))
    assert workflow is not None  # the foreign key cascades
    problem = None
    integration = None
    integration_id = workflow.configuration.get("integration_id")
    try:
        integration = await _n8n_integration(
            session, org_id, int(integration_id) if integration_id is not None else None
        )
    except (NotFound, InvalidInput) as exc:
        problem = str(exc)
    policy = await target_policy(session, org_id=org_id, integration=integration)
    return Claimed(
        organization_id=org_id,
        execution_id=row.id,
        attempt=row.retry_count + 1,
        url=workflow.webhook_url or "",
        event=row.trigger_event or "manual",
        workflow=WorkflowRef(id=workflow.id, name=workflow.name, n8n_workflow_id=workflow.n8n_workflow_id),
        input_data=dict(row.input_data),
        encrypted_secrets=integration.encrypted_secrets if integration is not None else None,
        policy=policy,
        problem=problem,
    )


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to. ``retry_in``: seconds until the next attempt (None: final)."""

    delivered: bool
    response_status: int | None = None
    error: str | None = None
    retry_in: float | None = None


async def record_outcome(
    session: AsyncSession, *, org_id: int, execution_id: int, outcome: Outcome
) -> str | None:
    """Store an attempt's outcome and release the lease; returns the execution's status (None if gone).

    Monotonic like the callbacks: a row n8n already reported on (running, success, ...) keeps its status."""
    row = (
        await session.execute(
            select(WorkflowExecution)
            .where(WorkflowExecution.organization_id == org_id, WorkflowExecution.id == execution_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    now = dt.datetime.now(dt.UTC)
    row.lease_expires_at = None
    row.response_status = outcome.response_status
    pending = row.status == "pending"
    if outcome.delivered:
        row.delivered_at = now
        row.error_message = None
        if pending:
            row.status = "running"  # n8n accepted the run; its callbacks report the rest
    elif outcome.retry_in is not None:
        row.error_message = outcome.error
        if pending:
            row.retry_count += 1
            row.next_attempt_at = now + dt.timedelta(seconds=outcome.retry_in)
    else:
        row.error_message = outcome.error
        if pending:
            row.status = "error"
            row.finished_at = now
    await session.flush()
    if not pending or outcome.retry_in is not None:
        return row.status
    await record(
        session,
        org_id=org_id,
        lead_id=row.lead_id,
        activity_type="workflow.delivered" if outcome.delivered else "workflow.delivery_failed",
        entity_type="workflow_execution",
        entity_id=row.id,
        after={"status": row.status, "response_status": outcome.response_status, "retries": row.retry_count},
    )
    return row.status
