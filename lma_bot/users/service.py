"""Users: members of an organization with a role (admin, manager, rep)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.errors import Conflict
from lma_bot.models import User
from lma_bot.orgs.service import get_organization
from lma_bot.users import repository
from lma_bot.users.schemas import UserCreate


async def add_user(
    session: AsyncSession, *, org_id: int, data: UserCreate, actor_id: int | None = None
) -> User:
    await get_organization(session, org_id=org_id)
    if (await session.execute(repository.by_email(org_id, data.email))).first() is not None:
        raise Conflict(f"a user with email {data.email} already exists in organization {org_id}")
    if data.slack_user_id and (
        (await session.execute(repository.by_slack_id(org_id, data.slack_user_id))).first() is not None
    ):
        raise Conflict(f"Slack user {data.slack_user_id} is already a user of organization {org_id}")
    user = User(
        organization_id=org_id,
        email=data.email,
        name=data.name,
        role=data.role,
        slack_user_id=data.slack_user_id,
        timezone=data.timezone,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # lost a race with a concurrent add of the same person
        raise Conflict(f"a user with email {data.email} already exists in organization {org_id}") from None
    await record(
        session,
        org_id=org_id,
        actor_id=actor_id,
        activity_type="user.added",
        entity_type="user",
        entity_id=user.id,
        after={"email": user.email, "name": user.name, "role": user.role},
    )
    return user
