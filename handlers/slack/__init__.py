"""Slack transport: a Bolt AsyncApp behind our own request guard, listeners registered by surface."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from handlers import context
from handlers.slack import actions, commands, views
from handlers.slack.deps import SlackDeps
from handlers.slack.guard import SlackGateway
from lma_bot.config import Settings
from lma_bot.leads.cache import LeadCardCache

log = logging.getLogger(__name__)

GATEWAY = web.AppKey("slack_gateway", SlackGateway)


def build_bolt(deps: SlackDeps) -> AsyncApp:
    settings = deps.settings
    assert settings.slack_signing_secret is not None
    # No shared aiohttp session: Bolt deep-copies the request (client included) for lazy listeners.
    client = AsyncWebClient(base_url=settings.slack_api_url, timeout=10)
    bot_token = settings.slack_bot_token

    async def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id, team_id=team_id, bot_token=bot_token, user_id=user_id
        )

    app = AsyncApp(
        signing_secret=settings.slack_signing_secret,
        client=client,
        authorize=authorize,
        request_verification_enabled=False,  # SlackGateway verifies first, strictly
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    return app


def slack_configured(settings: Settings) -> bool:
    return bool(settings.slack_signing_secret)


async def _slack_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[context.SETTINGS]
    deps = SlackDeps(
        settings=settings,
        database=app[context.DATABASE],
        redis=app[context.REDIS],
        keys=app[context.REDIS_KEYS],
        cards=LeadCardCache(app[context.REDIS], app[context.REDIS_KEYS]),
    )
    assert settings.slack_signing_secret is not None
    app[GATEWAY] = SlackGateway(
        bolt=build_bolt(deps), deps=deps, signing_secret=settings.slack_signing_secret
    )
    yield


async def slack_events(request: web.Request) -> web.StreamResponse:
    gateway = request.app.get(GATEWAY)
    if gateway is None:
        return web.json_response(
            {"error": "Slack is not configured: set SLACK_SIGNING_SECRET (and SLACK_BOT_TOKEN)"}, status=503
        )
    return await gateway.handle(request)


def setup(app: web.Application) -> None:
    """Mount ``POST /slack/events``; the Bolt app is built once the database and Redis are up."""
    app.router.add_post("/slack/events", slack_events)
    if slack_configured(app[context.SETTINGS]):
        app.cleanup_ctx.append(_slack_ctx)
    else:
        log.warning("slack.disabled reason=SLACK_SIGNING_SECRET not set")
