"""Workspaces: who the bot is in each Slack team.

Single-workspace mode (``SLACK_BOT_TOKEN``) authorizes every request with that token. Multi-workspace mode
(``SLACK_CLIENT_ID``/``SLACK_CLIENT_SECRET``) runs Slack's OAuth v2 flow at ``/slack/install`` and
``/slack/oauth_redirect``; installations live in PostgreSQL with the bot token encrypted under
``LMA_ENCRYPTION_KEYS``, and the token per team is cached in memory for a few minutes.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from logging import Logger

from redis.exceptions import RedisError
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.deps import SlackDeps
from lma_bot.crypto import SecretBox
from lma_bot.workspaces.service import (
    InstallationData,
    create_workspace_organization,
    find_installation,
    save_installation,
)

log = logging.getLogger(__name__)

#: Bot scopes; keep in step with slack/manifest.yml.
BOT_SCOPES = (
    "commands",
    "chat:write",
    "im:write",
    "users:read",
    "users:read.email",
    "app_mentions:read",
    "channels:read",
    "groups:read",
)
TOKEN_CACHE_SECONDS = 300
STATE_SECONDS = 600


def oauth_mode(deps: SlackDeps) -> bool:
    return bool(deps.settings.slack_client_id and deps.settings.slack_client_secret)


@dataclass
class Authorizer:
    """Bolt's ``authorize``: the bot token for a team, without touching the database on the hot path."""

    deps: SlackDeps
    box: SecretBox | None
    _cache: dict[str, tuple[float, AuthorizeResult]] = field(default_factory=dict)

    async def __call__(
        self, enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult | None:
        settings = self.deps.settings
        if not oauth_mode(self.deps):
            return AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=team_id,
                bot_token=settings.slack_bot_token,
                user_id=user_id,
            )
        if not team_id or self.box is None:
            return None
        cached = self._cache.get(team_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        org_id = await self.deps.database.resolve_slack_team(team_id)
        if org_id is None:
            return None
        async with self.deps.database.uow(org_id) as session:
            found = await find_installation(session, org_id=org_id, team_id=team_id, box=self.box)
        if found is None:
            return None
        result = AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=found.bot_token,
            bot_user_id=found.bot_user_id,
            bot_id=found.bot_id,
            bot_scopes=found.bot_scopes,
            user_id=user_id,
        )
        self._cache[team_id] = (time.monotonic() + TOKEN_CACHE_SECONDS, result)
        return result

    def forget(self, team_id: str) -> None:
        self._cache.pop(team_id, None)


class PostgresInstallationStore(AsyncInstallationStore):
    """Saves an OAuth installation: the team's organization (created on first install) and its bot."""

    def __init__(self, deps: SlackDeps, box: SecretBox, authorizer: Authorizer) -> None:
        self.deps = deps
        self.box = box
        self.authorizer = authorizer

    @property
    def logger(self) -> Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        team_id = installation.team_id
        if not team_id or not installation.bot_token:
            raise ValueError("an installation without a team or bot token can't be saved")
        database = self.deps.database
        org_id = await database.resolve_slack_team(team_id)
        if org_id is None:
            org_id = await database.next_organization_id()
            async with database.uow(org_id) as session:
                await create_workspace_organization(
                    session, org_id=org_id, team_id=team_id, team_name=installation.team_name
                )
            log.info("slack.install.organization_created org_id=%s team_id=%s", org_id, team_id)
        data = InstallationData(
            team_id=team_id,
            team_name=installation.team_name,
            enterprise_id=installation.enterprise_id,
            app_id=installation.app_id,
            bot_id=installation.bot_id,
            bot_user_id=installation.bot_user_id,
            bot_scopes=",".join(installation.bot_scopes or []),
            bot_token=installation.bot_token,
            installer_user_id=installation.user_id,
            is_enterprise_install=bool(installation.is_enterprise_install),
        )
        async with database.uow(org_id) as session:
            await save_installation(session, org_id=org_id, data=data, box=self.box)
        self.authorizer.forget(team_id)
        log.info("slack.install.saved org_id=%s team_id=%s", org_id, team_id)

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        result = await self.authorizer(enterprise_id, team_id, None)
        if result is None or not result.bot_token:
            return None
        return Bot(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=result.bot_token,
            bot_id=result.bot_id or "",
            bot_user_id=result.bot_user_id or "",
            installed_at=time.time(),
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        bot = await self.async_find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None:
            return None
        return Installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            user_id=user_id or "",
        )


class RedisStateStore(AsyncOAuthStateStore):
    """One-time OAuth ``state`` values in Redis (10 minutes)."""

    def __init__(self, deps: SlackDeps) -> None:
        self.deps = deps

    @property
    def logger(self) -> Logger:
        return log

    async def async_issue(self, *args: object, **kwargs: object) -> str:
        state = secrets.token_urlsafe(24)
        await self.deps.redis.set(self.deps.keys.dedupe("oauth-state", state), "1", ex=STATE_SECONDS)
        return state

    async def async_consume(self, state: str) -> bool:
        try:
            return bool(await self.deps.redis.getdel(self.deps.keys.dedupe("oauth-state", state)))
        except RedisError:
            log.warning("slack.oauth.state_store_unavailable")
            return False


def build_oauth_flow(deps: SlackDeps, store: PostgresInstallationStore) -> AsyncOAuthFlow:
    settings = deps.settings
    return AsyncOAuthFlow(
        client=AsyncWebClient(base_url=settings.slack_api_url, timeout=10),
        settings=AsyncOAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            scopes=list(BOT_SCOPES),
            redirect_uri=settings.public_url.rstrip("/") + "/slack/oauth_redirect",
            installation_store=store,
            installation_store_bot_only=True,
            state_store=RedisStateStore(deps),
        ),
    )
