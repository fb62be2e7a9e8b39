"""Organizations: the tenants. Created inside ``uow(new_id)`` with an id from ``Database.next_organization_id``
so the row passes its own row-level-security check."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.errors import Conflict, NotFound
from lma_bot.jsonschemas import validate_document
from lma_bot.models import Organization
from lma_bot.orgs import repository
from lma_bot.orgs.schemas import OrganizationCreate


async def create_organization(
    session: AsyncSession, *, org_id: int, data: OrganizationCreate, actor_id: int | None = None
) -> Organization:
    validate_document("organizations.settings", data.settings)
    org = Organization(id=org_id, name=data.name, slack_team_id=data.slack_team_id, settings=data.settings)
    session.add(org)
    try:
        await session.flush()
    except IntegrityError as exc:
        if "uq_organizations_slack_team_id" in str(exc.orig):
            raise Conflict(
                f"Slack team {data.slack_team_id} is already set up as another organization"
            ) from None
        raise
    await record(
        session,
        org_id=org_id,
        actor_id=actor_id,
        activity_type="organization.created",
        entity_type="organization",
        entity_id=org_id,
        after={"name": org.name, "slack_team_id": org.slack_team_id},
    )
    return org


async def get_organization(session: AsyncSession, *, org_id: int) -> Organization:
    org = (await session.execute(repository.organization(org_id))).scalar_one_or_none()
    if org is None:
        raise NotFound(f"organization {org_id} not found")
    return org
