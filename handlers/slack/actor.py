"""Who is asking: the Slack team's organization and the member's user (provisioned on first sight)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.slack.blocks.messages import workspace_not_set_up
from handlers.slack.deps import SlackDeps
from lma_bot.errors import DomainError, PermissionDenied
from lma_bot.models import User
from lma_bot.users.service import get_by_slack_id, provision_slack_member

log = logging.getLogger(__name__)


class WorkspaceNotSetUp(DomainError):
    def __init__(self, team_id: str, team_domain: str | None) -> None:
        super().__init__(workspace_not_set_up(team_id, team_domain))


@dataclass(frozen=True)
class Actor:
    org_id: int
    user_id: int
    role: str
    slack_user_id: str
    name: str
    timezone: str

    @property
    def is_manager(self) -> bool:
        return self.role in ("manager", "admin")


async def resolve_org(deps: SlackDeps, *, team_id: str, team_domain: str | None) -> int:
    org_id = await deps.org_for_team(team_id)
    if org_id is None:
        raise WorkspaceNotSetUp(team_id, team_domain)
    return org_id


async def slack_profile(client: AsyncWebClient, slack_user_id: str) -> dict[str, object]:
    try:
        response = await client.users_info(user=slack_user_id)
    except SlackApiError as exc:
        log.warning("slack.users_info.failed user=%s error=%s", slack_user_id, exc.response.get("error"))
        raise PermissionDenied(
            "I couldn't look up your Slack profile; please try again in a moment"
        ) from None
    user = response.get("user")
    return user if isinstance(user, dict) else {}


async def resolve_actor(
    deps: SlackDeps, client: AsyncWebClient, *, team_id: str, team_domain: str | None, slack_user_id: str
) -> Actor:
    """The member as an active user of the team's organization (cached briefly, see ``SlackDeps.actors``);
    PermissionDenied for a deactivated one, who is never cached."""
    org_id = await resolve_org(deps, team_id=team_id, team_domain=team_domain)
    cached = deps.actors.get((org_id, slack_user_id))
    if isinstance(cached, Actor):
        return cached
    async with deps.database.uow(org_id) as session:
        user = await get_by_slack_id(session, org_id=org_id, slack_user_id=slack_user_id)
        if user is not None:
            actor = _actor(
                org_id, user.id, user.role, slack_user_id, user.name, user.timezone, user.is_active
            )
    if user is None:
        profile = await slack_profile(client, slack_user_id)
        actor = await provision(deps, org_id=org_id, slack_user_id=slack_user_id, profile=profile)
    deps.actors.put((org_id, slack_user_id), actor)
    return actor


async def provision(deps: SlackDeps, *, org_id: int, slack_user_id: str, profile: dict[str, object]) -> Actor:
    if profile.get("deleted") or profile.get("is_bot"):
        raise PermissionDenied("this Slack account is deactivated (or a bot), so it can't use lma-bot")
    details = profile.get("profile") if isinstance(profile.get("profile"), dict) else {}
    assert isinstance(details, dict)
    name = str(
        details.get("real_name")
        or profile.get("real_name")
        or details.get("display_name")
        or profile.get("name")
        or slack_user_id
    )
    email = details.get("email")
    tz = profile.get("tz")
    async with deps.database.uow(org_id) as session:
        user = await provision_slack_member(
            session,
            org_id=org_id,
            slack_user_id=slack_user_id,
            name=name,
            email=str(email) if email else None,
            timezone=str(tz) if tz else None,
        )
        actor = _actor(org_id, user.id, user.role, slack_user_id, user.name, user.timezone, user.is_active)
    log.info("slack.user.provisioned org_id=%s user_id=%s", org_id, actor.user_id)
    return actor


def _actor(org_id: int, user_id: int, role: str, slack_id: str, name: str, tz: str, active: bool) -> Actor:
    if not active:
        raise PermissionDenied(
            "your lma-bot account is deactivated; ask an admin of your team to reactivate it"
        )
    return Actor(org_id=org_id, user_id=user_id, role=role, slack_user_id=slack_id, name=name, timezone=tz)


async def actor_for_payload(deps: SlackDeps, client: AsyncWebClient, body: dict[str, Any]) -> Actor:
    """The actor of an interactivity payload (a button, a form submission; App Home clicks carry the team in
    ``user.team_id`` only)."""
    team = body.get("team") or {}
    return await resolve_actor(
        deps,
        client,
        team_id=team.get("id") or body["user"]["team_id"],
        team_domain=team.get("domain"),
        slack_user_id=body["user"]["id"],
    )


async def user_row(session: AsyncSession, actor: Actor) -> User:
    """The actor's user row inside a unit of work, for services that take a ``User``; refused when it was
    removed or deactivated since the actor was resolved (the member cache holds an actor a few seconds)."""
    user = await session.get(User, (actor.org_id, actor.user_id))
    if user is None:
        raise PermissionDenied("your lma-bot user was removed; ask an admin of your team")
    if not user.is_active:
        raise PermissionDenied("your lma-bot account is deactivated; ask an admin of your team")
    return user
