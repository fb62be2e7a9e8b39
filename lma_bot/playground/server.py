"""``lma-bot playground [--demo]``: the bot, its scheduler jobs and a Slack stand-in in one process on
127.0.0.1, with a Slack-like page at ``/playground``.

A composition root (like :mod:`lma_bot.entrypoints`): the production web app (``create_app``) serves
``/slack/events`` behind its signature guard; the page's actions reach it as signed HTTP requests
(:mod:`.driver`); the bot's Web API calls go to the stand-in (:mod:`.stand_in`) through ``SLACK_API_URL``.
Secrets are generated per run, and the playground refuses to start when Slack credentials are configured,
so it can never talk to a real workspace.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web

from lma_bot.config import ConfigError, Settings
from lma_bot.crypto import generate_key
from lma_bot.db import Database, runtime_database_url
from lma_bot.entrypoints.runtime import open_runtime
from lma_bot.playground import directory
from lma_bot.playground.driver import Driver, PlaygroundError
from lma_bot.playground.seed import Seeded, ensure_workspaces, seed_demo
from lma_bot.playground.stand_in import PlaygroundSlack

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
SLACK = web.AppKey("playground_slack", PlaygroundSlack)
DRIVER = web.AppKey("playground_driver", Driver)
JSONDict = dict[str, Any]


def refuse_real_slack(settings: Settings) -> None:
    """The playground plays Slack itself: configured Slack credentials mean a real workspace, so stop."""
    for name, value in (
        ("SLACK_BOT_TOKEN", settings.slack_bot_token),
        ("SLACK_CLIENT_ID", settings.slack_client_id),
        ("SLACK_CLIENT_SECRET", settings.slack_client_secret),
    ):
        if value:
            raise ConfigError(
                name,
                "is set, so this looks like a real Slack workspace; the playground never talks to Slack. "
                "Unset it (and SLACK_* from .env) to run the playground, or use `lma-bot serve`",
            )


@dataclass
class Playground:
    settings: Settings  # resolved: database, Redis, the stand-in's URL, generated secrets
    slack: PlaygroundSlack
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/playground"


async def run_playground(
    settings: Settings, *, demo: bool, port: int, wait: Callable[[], Awaitable[None]]
) -> None:
    refuse_real_slack(settings)
    if settings.database_url is None or settings.redis_url is None:
        # embedded default: the playground's data beside, never inside, the bot's own embedded data
        settings = settings.model_copy(update={"data_dir": settings.data_dir / "playground"})
    runtime = await open_runtime(settings)
    slack = PlaygroundSlack()
    await slack.start()
    try:
        update: dict[str, object] = {
            "slack_signing_secret": secrets.token_hex(16),
            "slack_bot_token": f"xoxb-playground-{secrets.token_hex(12)}",
            "slack_api_url": slack.api_url,
            "public_url": f"http://{HOST}:{port}",
        }
        if not runtime.settings.encryption_keys:
            update["encryption_keys"] = (generate_key(),)
        resolved = runtime.settings.model_copy(update=update)
        playground = Playground(settings=resolved, slack=slack, port=port)
        seeded = await _seed(resolved, demo=demo)
        await _serve(playground, seeded, wait)
    finally:
        await slack.stop()
        await runtime.close()


async def _seed(settings: Settings, *, demo: bool) -> Seeded:
    assert settings.database_url is not None
    database = Database.from_url(
        runtime_database_url(settings, settings.database_url),
        pool_size=2,
        application_name="lma-bot playground",
    )
    try:
        orgs = await ensure_workspaces(database)
        return await seed_demo(database, orgs) if demo else Seeded(orgs=orgs)
    finally:
        await database.dispose()


async def _after_start(playground: Playground, seeded: Seeded) -> None:
    """Demo effects that need the stand-in: the reminder in the due queue, the pending request posted."""
    from slack_sdk.web.async_client import AsyncWebClient

    from handlers.slack.assignments import post_for_approval
    from lma_bot.assignments import service as assignments
    from lma_bot.redis import RedisKeys, open_redis
    from lma_bot.reminders.queue import DueQueue, Member

    settings = playground.settings
    assert settings.redis_url is not None
    assert settings.database_url is not None
    if seeded.reminder is not None:
        org_id, reminder_id, due = seeded.reminder
        redis = await open_redis(settings.redis_url)
        try:
            await DueQueue(redis, RedisKeys(settings.redis_prefix)).schedule(Member(org_id, reminder_id), due)
        finally:
            await redis.aclose()
    if seeded.pending_assignment_id is not None:
        org_id = seeded.orgs[directory.ACME.team_id]
        database = Database.from_url(runtime_database_url(settings, settings.database_url), pool_size=2)
        client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)
        try:
            async with database.uow(org_id) as session:
                view = await assignments.view(
                    session, org_id=org_id, assignment_id=seeded.pending_assignment_id
                )
            if view.status == "pending":
                await post_for_approval(database, client, org_id=org_id, view=view)
        finally:
            await database.dispose()
            if client.session is not None:
                await client.session.close()


async def _serve(playground: Playground, seeded: Seeded, wait: Callable[[], Awaitable[None]]) -> None:
    from lma_bot.entrypoints.scheduler import run_scheduler
    from lma_bot.entrypoints.web import create_app

    app = create_app(playground.settings)
    setup(app, playground)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stop = asyncio.Event()

    async def stopped() -> None:
        await stop.wait()

    scheduler: asyncio.Task[None] | None = None
    try:
        await web.TCPSite(runner, HOST, playground.port).start()
        await _after_start(playground, seeded)
        # the scheduler's jobs, as the scheduler process runs them (reminders arrive, requests expire)
        scheduler = asyncio.create_task(
            run_scheduler(playground.settings, stopped), name="playground.scheduler"
        )
        log.info("playground.ready url=%s demo_leads=%s", playground.url, seeded.leads)
        print(f"lma-bot playground: open {playground.url}  (Ctrl-C stops it)", flush=True)  # noqa: T201
        await wait()
    finally:
        stop.set()
        if scheduler is not None:
            await asyncio.wait_for(scheduler, timeout=10)
        await runner.cleanup()


# ---------------------------------------------------------------------------------------------- routes


def setup(app: web.Application, playground: Playground) -> None:
    app[SLACK] = playground.slack
    events_url = f"http://{HOST}:{playground.port}/slack/events"
    secret = playground.settings.slack_signing_secret
    assert secret is not None

    async def driver_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            app[DRIVER] = Driver(playground.slack, session, events_url, secret)
            yield

    app.cleanup_ctx.append(driver_ctx)
    app.router.add_get("/", _redirect)
    app.router.add_get("/playground", _page)
    app.router.add_get("/favicon.ico", _no_icon)
    app.router.add_get("/playground/static/{name}", _static)
    app.router.add_get("/playground/api/state", _state)
    app.router.add_post("/playground/api/send", _send)
    app.router.add_post("/playground/api/action", _action)
    app.router.add_post("/playground/api/submit", _submit)
    app.router.add_post("/playground/api/close", _close)
    app.router.add_post("/playground/api/home", _home)


STATIC = {"app.js": "application/javascript", "style.css": "text/css", "index.html": "text/html"}


def _asset(name: str) -> str:
    return resources.files("lma_bot.playground").joinpath("static", name).read_text(encoding="utf-8")


async def _redirect(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/playground")


async def _no_icon(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def _page(_request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=_asset("index.html"), content_type="text/html", headers={"Cache-Control": "no-store"}
    )


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC or name == "index.html":
        raise web.HTTPNotFound()
    return web.Response(text=_asset(name), content_type=STATIC[name], headers={"Cache-Control": "no-store"})


def _people(space: directory.Workspace, slack: PlaygroundSlack) -> list[JSONDict]:
    people = [
        {"id": p.slack_id, "handle": p.handle, "name": p.real_name, "role": p.role, "tz": p.timezone}
        for p in space.people
    ]
    people.append({"id": slack.bot_user_id, "handle": slack.bot_name, "name": slack.bot_name, "role": "bot"})
    return people


async def _state(request: web.Request) -> web.StreamResponse:
    """Everything the page shows for one person: their workspace, a conversation, their modal and App Home."""
    slack = request.app[SLACK]
    space = directory.workspace(request.query.get("team", "")) or directory.ACME
    user = request.query.get("user") or space.people[0].slack_id
    person = space.person(user) or space.people[0]
    channel = request.query.get("channel") or space.channels[0].id
    if directory.workspace_of_channel(channel) is not space or (
        channel.startswith("D") and channel != person.dm_channel
    ):
        channel = space.channels[0].id
    state: JSONDict = {
        "version": slack.version,
        "workspaces": [{"id": w.team_id, "name": w.name} for w in directory.WORKSPACES],
        "team": space.team_id,
        "user": person.slack_id,
        "people": _people(space, slack),
        "channels": [{"id": c.id, "name": c.name} for c in space.channels],
        "dm": person.dm_channel,
        "channel": channel,
        "messages": slack.conversation(channel, person.slack_id),
        "home": slack.home_view(person.slack_id),
        "modal": slack.top_modal(person.slack_id),
    }
    return web.json_response(state, headers={"Cache-Control": "no-store"})


async def _body(request: web.Request) -> JSONDict:
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="expected JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return data


async def _run(work: Awaitable[JSONDict]) -> web.StreamResponse:
    try:
        return web.json_response(await work)
    except PlaygroundError as exc:
        return web.json_response({"ok": False, "error": str(exc)}, status=400)
    except (KeyError, TypeError) as exc:
        return web.json_response({"ok": False, "error": f"bad request: {exc}"}, status=400)


async def _send(request: web.Request) -> web.StreamResponse:
    data = await _body(request)
    driver = request.app[DRIVER]
    return await _run(
        driver.send_text(
            str(data["team"]),
            str(data["user"]),
            str(data["channel"]),
            str(data["text"]),
            data.get("thread_ts"),
        )
    )


async def _action(request: web.Request) -> web.StreamResponse:
    data = await _body(request)
    driver = request.app[DRIVER]
    return await _run(
        driver.action(str(data["team"]), str(data["user"]), dict(data["container"]), dict(data["action"]))
    )


async def _submit(request: web.Request) -> web.StreamResponse:
    data = await _body(request)
    driver = request.app[DRIVER]
    return await _run(
        driver.submit(str(data["team"]), str(data["user"]), str(data["view_id"]), dict(data["values"]))
    )


async def _close(request: web.Request) -> web.StreamResponse:
    data = await _body(request)
    driver = request.app[DRIVER]
    return await _run(driver.close(str(data["team"]), str(data["user"]), str(data["view_id"])))


async def _home(request: web.Request) -> web.StreamResponse:
    data = await _body(request)
    driver = request.app[DRIVER]
    return await _run(driver.open_home(str(data["team"]), str(data["user"])))
