"""Slack workspaces: installations (multi-workspace OAuth) with the bot token encrypted at rest.

Installing the app into a workspace that has no organization yet creates one (named after the workspace),
with the installing member as its first admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lma_bot.activity.service import record
from lma_bot.crypto import SecretBox
from lma_bot.models import SlackInstallation, User
from lma_bot.orgs.schemas import OrganizationCreate
from lma_bot.orgs.service import create_organization
from lma_bot.users.service import get_by_slack_id


@dataclass(frozen=True)
class InstallationData:
    team_id: str
    team_name: str | None
    enterprise_id: str | None
    app_id: str | None
    bot_id: str | None
    bot_user_id: str | None
    bot_scopes: str | None
    bot_token: str
    installer_user_id: str | None
    is_enterprise_install: bool = False


async def create_workspace_organization(
    session: AsyncSession, *, org_id: int, team_id: str, team_name: str | None
) -> None:
    await create_organization(
        session, org_id=org_id, data=OrganizationCreate(name=team_name or team_id, slack_team_id=team_id)
    )


async def save_installation(
    session: AsyncSession, *, org_id: int, data: InstallationData, box: SecretBox
) -> SlackInstallation:
    row = (
        await session.execute(
            select(SlackInstallation).where(
                SlackInstallation.organization_id == org_id, SlackInstallation.team_id == data.team_id
            )
        )
    ).scalar_one_or_none()
    if row is None:
        row = SlackInstallation(organization_id=org_id, team_id=data.team_id, bot_token_encrypted="")
        session.add(row)
    row.team_name = data.team_name
    row.enterprise_id = data.enterprise_id
    row.app_id = data.app_id
    row.bot_id = data.bot_id
    row.bot_user_id = data.bot_user_id
    row.bot_scopes = data.bot_scopes
    row.bot_token_encrypted = box.encrypt(data.bot_token)
    row.installer_user_id = data.installer_user_id
    row.is_enterprise_install = data.is_enterprise_install
    await session.flush()
    if data.installer_user_id:
        installer = await get_by_slack_id(session, org_id=org_id, slack_user_id=data.installer_user_id)
        if installer is None:
            installer = User(
                organization_id=org_id,
                email=f"{data.installer_user_id.lower()}@slack-user.invalid",
                name=data.installer_user_id,
                role="admin",
                slack_user_id=data.installer_user_id,
            )
            session.add(installer)
            await session.flush()
    await record(
        session,
        org_id=org_id,
        activity_type="slack.installed",
        entity_type="organization",
        entity_id=org_id,
        after={"team_id": data.team_id, "bot_user_id": data.bot_user_id, "scopes": data.bot_scopes},
    )
    return row


async def find_installation(
    session: AsyncSession, *, org_id: int, team_id: str, box: SecretBox
) -> InstallationData | None:
    row = (
        await session.execute(
            select(SlackInstallation).where(
                SlackInstallation.organization_id == org_id, SlackInstallation.team_id == team_id
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return InstallationData(
        team_id=row.team_id,
        team_name=row.team_name,
        enterprise_id=row.enterprise_id,
        app_id=row.app_id,
        bot_id=row.bot_id,
        bot_user_id=row.bot_user_id,
        bot_scopes=row.bot_scopes,
        bot_token=box.decrypt(row.bot_token_encrypted),
        installer_user_id=row.installer_user_id,
        is_enterprise_install=row.is_enterprise_install,
    )
