"""Leads: create and look up. Slack, n8n and imports all create leads through :func:`create_lead`."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.errors import Conflict, NotFound
from lma_bot.jsonschemas import validate_document
from lma_bot.leads import repository
from lma_bot.leads.schemas import LeadCreate
from lma_bot.models import Lead


class DuplicateLead(Conflict):
    def __init__(self, existing_id: int, email: str) -> None:
        self.existing_id = existing_id
        super().__init__(f"lead {existing_id} already has the email {email}")


async def create_lead(
    session: AsyncSession, *, org_id: int, data: LeadCreate, actor_id: int | None = None
) -> Lead:
    validate_document("leads.custom_fields", data.custom_fields)
    if data.email:
        existing = (await session.execute(repository.by_email(org_id, data.email))).scalar_one_or_none()
        if existing is not None:
            raise DuplicateLead(existing.id, data.email)
    lead = Lead(organization_id=org_id, created_by=actor_id, **data.model_dump())
    session.add(lead)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        if data.email and "uq_leads_org_email" in str(exc.orig):
            found = (await session.execute(repository.by_email(org_id, data.email))).scalar_one()
            raise DuplicateLead(found.id, data.email) from None
        raise
    await record(
        session,
        org_id=org_id,
        actor_id=actor_id,
        lead_id=lead.id,
        activity_type="lead.created",
        entity_type="lead",
        entity_id=lead.id,
        after=data.model_dump(exclude_defaults=True),
    )
    return lead


async def get_lead(session: AsyncSession, *, org_id: int, lead_id: int) -> Lead:
    lead = (await session.execute(repository.by_id(org_id, lead_id))).scalar_one_or_none()
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    return lead
