"""Users: members of an organization with a role (admin, manager, rep)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.errors import Conflict, InvalidInput
from lma_bot.models import User
from lma_bot.orgs.service import get_organization
from lma_bot.users import repository
from lma_bot.users.schemas import UserCreate
from lma_bot.validation import check_timezone, normalize_email


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


async def get_by_slack_id(session: AsyncSession, *, org_id: int, slack_user_id: str) -> User | None:
    return (await session.execute(repository.by_slack_id(org_id, slack_user_id))).scalar_one_or_none()


async def provision_slack_member(
    session: AsyncSession,
    *,
    org_id: int,
    slack_user_id: str,
    name: str,
    email: str | None,
    timezone: str | None,
) -> User:
    """The user for a Slack member seen for the first time: linked by email to an existing user without a
    Slack id, else created as a ``rep`` (name, email and time zone from Slack's profile)."""
    clean_email = _usable_email(email) or f"{slack_user_id.lower()}@slack-user.invalid"
    tz = _usable_timezone(timezone)
    existing = (await session.execute(repository.by_email(org_id, clean_email))).scalar_one_or_none()
    if existing is not None and existing.slack_user_id is None:
        existing.slack_user_id = slack_user_id
        await session.flush()
        await record(
            session,
            org_id=org_id,
            activity_type="user.linked_to_slack",
            entity_type="user",
            entity_id=existing.id,
            after={"slack_user_id": slack_user_id},
        )
        return existing
    if existing is not None:  # same email, another Slack member: keep both, do not steal the address
        clean_email = f"{slack_user_id.lower()}@slack-user.invalid"
    user = User(
        organization_id=org_id,
        email=clean_email,
        name=(name or slack_user_id).strip()[:255] or slack_user_id,
        role="rep",
        slack_user_id=slack_user_id,
        timezone=tz,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # provisioned concurrently by another request of the same member
        session.expunge(user)
        found = await get_by_slack_id(session, org_id=org_id, slack_user_id=slack_user_id)
        if found is None:
            raise
        return found
    await record(
        session,
        org_id=org_id,
        activity_type="user.provisioned_from_slack",
        entity_type="user",
        entity_id=user.id,
        after={"slack_user_id": slack_user_id, "name": user.name, "role": "rep"},
    )
    return user


def _usable_email(email: str | None) -> str | None:
    if not email:
        return None
    try:
        return normalize_email(email)
    except InvalidInput:
        return None


def _usable_timezone(timezone: str | None) -> str:
    if not timezone:
        return "UTC"
    try:
        return check_timezone(timezone)
    except InvalidInput:
        return "UTC"
