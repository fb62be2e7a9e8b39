"""Slack transport: a Bolt AsyncApp behind our own request guard, listeners registered by surface."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from handlers import context
from handlers.slack import actions, assignments, commands, events, reminders, scoring, views
from handlers.slack.deps import SlackDeps
from handlers.slack.guard import SlackGateway
from handlers.slack.lazy import BoundedLazyListenerRunner, bound_lazy_listeners
from handlers.slack.oauth import Authorizer, PostgresInstallationStore, build_oauth_flow, oauth_mode
from lma_bot.config import ConfigError, Settings
from lma_bot.crypto import SecretBox
from lma_bot.leads.cache import LeadCardCache

log = logging.getLogger(__name__)

GATEWAY = web.AppKey("slack_gateway", SlackGateway)
LAZY_RUNNER = web.AppKey("slack_lazy_runner", BoundedLazyListenerRunner)
OAUTH_FLOW = web.AppKey("slack_oauth_flow", AsyncOAuthFlow)


def check_settings(settings: Settings) -> None:
    """Raise ConfigError when Slack is half configured (a signing secret but no way to get a token)."""
    if not settings.slack_signing_secret:
        return
    oauth = bool(settings.slack_client_id or settings.slack_client_secret)
    if oauth and not (settings.slack_client_id and settings.slack_client_secret):
        missing = "SLACK_CLIENT_SECRET" if settings.slack_client_id else "SLACK_CLIENT_ID"
        raise ConfigError(missing, "required with the other one for multi-workspace OAuth")
    if not oauth and not settings.slack_bot_token:
        raise ConfigError(
            "SLACK_BOT_TOKEN",
            "required (single workspace), or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (OAuth)",
        )
    if oauth and not settings.encryption_keys:
        raise ConfigError("LMA_ENCRYPTION_KEYS", "required to store Slack installations")


def build_bolt(deps: SlackDeps, authorizer: Authorizer) -> AsyncApp:
    settings = deps.settings
    assert settings.slack_signing_secret is not None
    # No shared aiohttp session here: Bolt deep-copies the request (client included) for lazy listeners;
    # the lazy runner gives each copy its pooled session instead (handlers.slack.lazy).
    client = AsyncWebClient(base_url=settings.slack_api_url, timeout=10)
    install_url = settings.public_url.rstrip("/") + "/slack/install"

    async def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult | None:  # None: not installed; Bolt answers with the message below
        return await authorizer(enterprise_id, team_id, user_id)

    app = AsyncApp(
        signing_secret=settings.slack_signing_secret,
        client=client,
        authorize=cast(Callable[..., Awaitable[AuthorizeResult]], authorize),
        request_verification_enabled=False,  # SlackGateway verifies first, strictly
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        user_facing_authorize_error_message=(
            f"lma-bot is not installed in this workspace yet. A workspace admin can install it: {install_url}"
        ),
    )
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    reminders.register(app, deps)
    scoring.register(app, deps)
    assignments.register(app, deps)
    events.register(app, deps)
    bound_lazy_listeners(app, deps.ack_gate)
    return app


async def _slack_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[context.SETTINGS]
    deps = SlackDeps(
        settings=settings,
        database=app[context.DATABASE],
        redis=app[context.REDIS],
        keys=app[context.REDIS_KEYS],
        cards=LeadCardCache(app[context.REDIS], app[context.REDIS_KEYS]),
        scores=app.get(context.SCORES),
    )
    box = SecretBox(settings.encryption_keys) if settings.encryption_keys else None
    authorizer = Authorizer(deps, box)
    if oauth_mode(deps):
        assert box is not None
        app[OAUTH_FLOW] = build_oauth_flow(deps, PostgresInstallationStore(deps, box, authorizer))
    assert settings.slack_signing_secret is not None
    bolt = build_bolt(deps, authorizer)
    runner = bolt._async_listener_runner.lazy_listener_runner
    assert isinstance(runner, BoundedLazyListenerRunner)
    app[LAZY_RUNNER] = runner
    app[GATEWAY] = SlackGateway(bolt=bolt, deps=deps, signing_secret=settings.slack_signing_secret)
    yield
    await runner.aclose()


async def slack_events(request: web.Request) -> web.StreamResponse:
    gateway = request.app.get(GATEWAY)
    if gateway is None:
        return web.json_response(
            {"error": "Slack is not configured: set SLACK_SIGNING_SECRET (and SLACK_BOT_TOKEN)"}, status=503
        )
    return await gateway.handle(request)


async def _oauth(request: web.Request, *, callback: bool) -> web.StreamResponse:
    flow = request.app.get(OAUTH_FLOW)
    if flow is None:
        return web.json_response(
            {"error": "multi-workspace install is not configured (SLACK_CLIENT_ID, SLACK_CLIENT_SECRET)"},
            status=404,
        )
    bolt_request = AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
    response = await (
        flow.handle_callback(bolt_request) if callback else flow.handle_installation(bolt_request)
    )
    return await to_aiohttp_response(response)


async def slack_install(request: web.Request) -> web.StreamResponse:
    return await _oauth(request, callback=False)


async def slack_oauth_redirect(request: web.Request) -> web.StreamResponse:
    return await _oauth(request, callback=True)


def setup(app: web.Application) -> None:
    """Mount the Slack routes; the Bolt app is built once the database and Redis are up."""
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/slack/install", slack_install)
    app.router.add_get("/slack/oauth_redirect", slack_oauth_redirect)
    settings = app[context.SETTINGS]
    if settings.slack_signing_secret:
        check_settings(settings)
        app.cleanup_ctx.append(_slack_ctx)
    else:
        log.warning("slack.disabled reason=SLACK_SIGNING_SECRET not set")
