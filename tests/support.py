"""Shared test helpers: organizations with one row in every tenant table, created through the runtime role."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.db import Database
from lma_bot.orgs.schemas import OrganizationCreate
from lma_bot.orgs.service import create_organization


async def new_org(db: Database, name: str | None = None, slack_team_id: str | None = None) -> int:
    org_id = await db.next_organization_id()
    async with db.uow(org_id) as session:
        await create_organization(
            session,
            org_id=org_id,
            data=OrganizationCreate(name=name or f"Org {uuid.uuid4().hex[:6]}", slack_team_id=slack_team_id),
        )
    return org_id


async def _insert(session: AsyncSession, table: str, values: dict[str, Any]) -> int:
    columns = ", ".join(values)
    params = ", ".join(f":{c}" for c in values)
    result = await session.execute(
        text(f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING id"), values
    )
    return int(result.scalar_one())


def row_values(table: str, org: int, ids: dict[str, int]) -> dict[str, Any]:
    """A minimal valid row of ``table`` for organization ``org`` referencing that org's rows in ``ids``."""
    tag = uuid.uuid4().hex[:8]
    user, lead = ids.get("users"), ids.get("leads")
    rows: dict[str, dict[str, Any]] = {
        "users": {"email": f"u{tag}@example.com", "name": "Uma User", "role": "rep"},
        "leads": {"email": f"l{tag}@example.com", "first_name": "Lee", "assigned_to_id": user},
        "workflows": {"n8n_workflow_id": f"wf-{tag}", "name": "Nurture", "created_by": user},
        "workflow_executions": {"workflow_id": ids.get("workflows"), "lead_id": lead},
        "activity_logs": {
            "activity_type": "lead.created",
            "entity_type": "lead",
            "lead_id": lead,
            "user_id": user,
        },
        "lead_scoring_rules": {
            "name": "Title",
            "rule_type": "demographic",
            "criteria": '{"all": []}',
            "score_points": 5,
        },
        "lead_score_history": {
            "lead_id": lead,
            "previous_score": 0,
            "new_score": 5,
            "score_change": 5,
            "rule_id": ids.get("lead_scoring_rules"),
        },
        "lead_events": {
            "lead_id": lead,
            "event_type": "email_opened",
            "occurred_at": dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC),
            "dedupe_key": f"test:{tag}",
        },
        "communications": {
            "lead_id": lead,
            "user_id": user,
            "communication_type": "email",
            "direction": "outbound",
        },
        "campaigns": {"name": "Q4", "created_by": user},
        "campaign_leads": {"campaign_id": ids.get("campaigns"), "lead_id": lead},
        "integrations": {"integration_type": "automation", "provider_name": "n8n", "configuration": "{}"},
        "lead_notes": {
            "lead_id": lead,
            "user_id": user,
            "content": "Called, wants a demo",
            "mentioned_users": [user],
        },
        "lead_assignments": {"lead_id": lead, "assigned_to": user, "assigned_by": user},
        "webhook_events": {
            "integration_id": ids.get("integrations"),
            "provider": "n8n",
            "event_type": "execution",
            "provider_event_id": f"ev-{tag}",
            "payload": "{}",
        },
        "reminders": {
            "lead_id": lead,
            "user_id": user,
            "created_by": user,
            "due_at": dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC),
            "message": "Call back",
        },
        "assignment_rotations": {"last_user_id": user},
        "slack_installations": {
            "team_id": f"T{tag.upper()}",
            "bot_token_encrypted": "gAAAA-not-a-real-token",
        },
    }
    values = dict(rows[table])
    values["organization_id"] = org
    return values


# Insertion order respects the foreign keys.
SEED_ORDER = (
    "users",
    "leads",
    "workflows",
    "workflow_executions",
    "activity_logs",
    "lead_scoring_rules",
    "lead_score_history",
    "lead_events",
    "communications",
    "campaigns",
    "campaign_leads",
    "integrations",
    "lead_notes",
    "lead_assignments",
    "slack_installations",
    "webhook_events",
    "reminders",
    "assignment_rotations",
)


async def fill_every_table(db: Database, org: int) -> dict[str, int]:
    """One row in every tenant table for ``org``; returns table -> id."""
    ids: dict[str, int] = {}
    async with db.uow(org) as session:
        for table in SEED_ORDER:
            ids[table] = await _insert(session, table, row_values(table, org, ids))
    return ids
