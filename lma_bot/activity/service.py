"""The audit trail: every change to tenant data records who did what, with before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.models import ActivityLog


async def record(
    session: AsyncSession,
    *,
    org_id: int,
    activity_type: str,
    entity_type: str,
    entity_id: int | None,
    actor_id: int | None = None,
    lead_id: int | None = None,
    description: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> ActivityLog:
    entry = ActivityLog(
        organization_id=org_id,
        user_id=actor_id,
        lead_id=lead_id,
        activity_type=activity_type,
        entity_type=entity_type,
        entity_id=entity_id,
        description=description,
        before=before,
        after=after,
        metadata_=metadata or {},
    )
    session.add(entry)
    return entry
