"""What `/lead workflows` and `/lead admin integrations` do: service calls in a unit of work, role checks.
The execution a manual run writes is sent by the dispatcher after the commit; :func:`await_outcome`
watches for its first result so the member gets a follow-up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from handlers.slack.actor import Actor
from handlers.slack.deps import SlackDeps
from lma_bot.errors import PermissionDenied
from lma_bot.integrations.overview import IntegrationOverview, overview
from lma_bot.leads import service as leads
from lma_bot.workflows import service as workflows
from lma_bot.workflows.service import WorkflowView


@dataclass(frozen=True)
class RunStarted:
    execution_id: int
    workflow_id: int
    workflow_name: str
    lead_id: int
    lead_name: str


@dataclass(frozen=True)
class RunResult:
    execution_id: int
    workflow_name: str
    status: str
    retry_count: int
    response_status: int | None
    error: str | None
    settled: bool  # False: still waiting for the first attempt when we stopped watching


async def list_workflows(deps: SlackDeps, actor: Actor) -> list[WorkflowView]:
    async with deps.database.uow(actor.org_id) as session:
        return await workflows.list_workflows(session, org_id=actor.org_id)


async def run_workflow(deps: SlackDeps, actor: Actor, workflow_id: int, ref: str) -> RunStarted:
    if not actor.is_manager:
        raise PermissionDenied("only managers and admins run workflows by hand; ask one of them")
    async with deps.database.uow(actor.org_id) as session:
        lead = await leads.resolve_lead(session, org_id=actor.org_id, ref=ref)
        workflow = await workflows.get_workflow(session, org_id=actor.org_id, workflow_id=workflow_id)
        execution_id = await workflows.run_manually(
            session, org_id=actor.org_id, workflow_id=workflow.id, lead=lead, actor_id=actor.user_id
        )
        started = RunStarted(
            execution_id=execution_id,
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            lead_id=lead.id,
            lead_name=lead.display_name,
        )
    return started


async def await_outcome(
    deps: SlackDeps, actor: Actor, started: RunStarted, *, wait_seconds: float = 15.0
) -> RunResult:
    """The execution after its first attempt (delivered, failed, or a retry scheduled), or as it is when
    ``wait_seconds`` run out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        async with deps.database.uow(actor.org_id) as session:
            row = await workflows.get_execution(
                session, org_id=actor.org_id, execution_id=started.execution_id
            )
            settled = row.status != "pending" or row.retry_count > 0 or row.response_status is not None
            result = RunResult(
                execution_id=row.id,
                workflow_name=started.workflow_name,
                status=row.status,
                retry_count=row.retry_count,
                response_status=row.response_status,
                error=row.error_message,
                settled=settled,
            )
        if settled or loop.time() >= deadline:
            return result
        await asyncio.sleep(0.2)


async def integrations(deps: SlackDeps, actor: Actor) -> list[IntegrationOverview]:
    if actor.role != "admin":
        raise PermissionDenied("`/lead admin` is for admins of this workspace's organization")
    async with deps.database.uow(actor.org_id) as session:
        return await overview(session, org_id=actor.org_id, public_url=deps.settings.public_url)
