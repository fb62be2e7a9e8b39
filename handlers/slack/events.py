"""Events API: the App Home tab, and a friendly answer when someone @mentions the bot."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.actor import resolve_actor
from handlers.slack.deps import SlackDeps
from handlers.slack.home import publish_home
from lma_bot.errors import DomainError

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    @app.event("app_home_opened")
    async def app_home_opened(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab") not in (None, "home"):
            return
        try:
            actor = await resolve_actor(
                deps, client, team_id=body["team_id"], team_domain=None, slack_user_id=event["user"]
            )
        except DomainError as exc:
            log.info("slack.home.skipped reason=%s", type(exc).__name__)
            return
        await publish_home(deps.database, client, org_id=actor.org_id, user_id=actor.user_id)

    @app.event("app_mention")
    async def app_mention(event: dict[str, Any], client: AsyncWebClient) -> None:
        await client.chat_postMessage(
            channel=event["channel"],
            thread_ts=event.get("thread_ts") or event.get("ts"),
            text=f"Hi <@{event.get('user')}>! I work through `/lead`: try `/lead help`.",
        )
