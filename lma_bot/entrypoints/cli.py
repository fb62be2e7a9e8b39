"""``lma-bot``: the operator CLI and the process entrypoints (migrate, serve, scheduler).

Bad input to any command prints one line on stderr naming what is wrong and exits with code 2, with
nothing written. ``--json`` prints machine-readable output on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from lma_bot.config import ConfigError, Settings, configure_logging, load_settings, worker_environment
from lma_bot.db import Database, TenantError, runtime_database_url
from lma_bot.dbadmin import RoleSetupError, migrate
from lma_bot.embedded import EmbeddedServiceError
from lma_bot.entrypoints.runtime import open_runtime
from lma_bot.errors import DomainError, parse_model

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

EXIT_USAGE = 2
EXIT_FAILURE = 1
WORKER_STOP_TIMEOUT = 30.0  # seconds a worker has to finish its requests and flushes after SIGTERM


class UsageError(Exception):
    """Bad input detected by a command itself; shown as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _emit(args: argparse.Namespace, view: BaseModel, human: str) -> None:
    _out(json.dumps(view.model_dump(mode="json")) if args.json else human)


# ---------------------------------------------------------------- commands


async def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    runtime = await open_runtime(settings, auto_migrate=False)
    try:
        url = runtime.settings.database_url
        assert url is not None
        report = await migrate(url, settings.db_app_role, settings.db_app_password)
    finally:
        await runtime.close()
    if args.json:
        _out(json.dumps({"migrated": "head", "runtime_role": report.role, "role_created": report.created}))
    else:
        _out(f"database migrated to head; {report.message} with its privileges granted")
    return 0


async def _run_app(app: web.Application, host: str, port: int, *, reuse_port: bool = False) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        _tune_gc()
        log.info("web.listening url=http://%s:%s", host, port)
        await _wait_for_signal()
    finally:
        await runner.cleanup()


def _tune_gc() -> None:
    """Once started: the start-up objects (modules, the app, compiled schemas) move to the permanent
    generation, so a full collection no longer walks them, and young collections run every 10,000
    allocations instead of 700. A request path allocating tens of objects otherwise triggered a collection
    every few requests, and the occasional full one stalled every request in flight."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 10)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from lma_bot.entrypoints.web import create_app

    if not settings.embedded:
        settings.require("encryption_keys")
    port = args.port if args.port is not None else settings.port
    workers = args.workers if args.workers is not None else settings.web_concurrency
    runtime = await open_runtime(settings)
    try:
        if workers > 1:
            return await _serve_workers(runtime.settings, args.host, port, workers)
        await _run_app(create_app(runtime.settings), args.host, port, reuse_port=args.reuse_port)
    finally:
        await runtime.close()
    return 0


async def _serve_workers(settings: Settings, host: str, port: int, workers: int) -> int:
    """``workers`` single-process ``serve`` children on one port (each binds it with SO_REUSEPORT; the
    kernel spreads connections over them). This process only starts them (after resolving the services, so
    an embedded default is started and migrated once), forwards SIGTERM/SIGINT and waits. Every worker is a
    whole web process (its own pool, batcher, processor, sweeper), which CONTRACT.md allows: several web
    processes may run at once. If one exits by itself the others are stopped and its exit code returned."""
    command = [
        sys.executable, "-m", "lma_bot.entrypoints.cli", "serve",
        "--host", host, "--port", str(port), "--workers", "1", "--reuse-port",
    ]  # fmt: skip
    env = worker_environment(settings)
    children = [await asyncio.create_subprocess_exec(*command, env=env) for _ in range(workers)]
    log.info("web.workers count=%s pids=%s", workers, ",".join(str(c.pid) for c in children))
    exits = [asyncio.ensure_future(child.wait()) for child in children]
    stop = asyncio.ensure_future(_wait_for_signal())
    await asyncio.wait([stop, *exits], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if not stop.done():
        failed = next(child for child in children if child.returncode is not None)
        code = failed.returncode or EXIT_FAILURE
        log.error("web.worker_exited pid=%s code=%s; stopping the others", failed.pid, failed.returncode)
    stop.cancel()
    for child in children:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*exits), WORKER_STOP_TIMEOUT)
    except TimeoutError:
        for child in children:
            if child.returncode is None:
                child.kill()
        await asyncio.gather(*exits)
    return code


async def _cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from lma_bot.entrypoints.scheduler import run_scheduler

    runtime = await open_runtime(settings)
    try:
        await run_scheduler(runtime.settings, _wait_for_signal)
    finally:
        await runtime.close()
    return 0


async def _cmd_playground(args: argparse.Namespace, settings: Settings) -> int:
    from lma_bot.playground.server import run_playground

    port = args.port if args.port is not None else settings.port
    await run_playground(settings, demo=args.demo, port=port, wait=_wait_for_signal)
    return 0


async def _with_database(
    settings: Settings, work: Callable[[Database, Settings], Awaitable[int]], *, require: tuple[str, ...] = ()
) -> int:
    """Run a command's ``work`` with the database as the runtime role (embedded services started when no URL
    is set), then close everything. ``require``: settings the command cannot do without (exit 2 naming them)."""
    runtime = await open_runtime(settings)
    try:
        ready = runtime.settings  # with the embedded services' URLs when none were set
        for name in require:
            ready.require(name)
        url = ready.database_url
        assert url is not None
        database = Database.from_url(
            runtime_database_url(ready, url), pool_size=2, application_name="lma-bot cli"
        )
        try:
            return await work(database, ready)
        finally:
            await database.dispose()
    finally:
        await runtime.close()


async def _cmd_orgs_create(args: argparse.Namespace, settings: Settings) -> int:
    # each command imports what only it needs: start-up is part of every command's time (`rescore`)
    from lma_bot.orgs.schemas import OrganizationCreate, OrganizationView
    from lma_bot.orgs.service import create_organization

    data = parse_model(OrganizationCreate, {"name": args.name, "slack_team_id": args.slack_team_id})

    async def work(database: Database, settings: Settings) -> int:
        org_id = await database.next_organization_id()
        async with database.uow(org_id) as session:
            org = await create_organization(session, org_id=org_id, data=data)
            view = OrganizationView.model_validate(org)
        team = f" (Slack team {view.slack_team_id})" if view.slack_team_id else ""
        _emit(args, view, f"created organization {view.id} {view.name!r}{team}")
        return 0

    return await _with_database(settings, work)


async def _cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    from lma_bot.users.schemas import UserCreate, UserView
    from lma_bot.users.service import add_user

    data = parse_model(
        UserCreate,
        {
            "email": args.email,
            "name": args.name,
            "role": args.role,
            "slack_user_id": args.slack_user_id,
            "timezone": args.timezone,
        },
    )

    async def work(database: Database, settings: Settings) -> int:
        async with database.uow(args.org) as session:
            user = await add_user(session, org_id=args.org, data=data)
            view = UserView.model_validate(user)
        _emit(
            args,
            view,
            f"added {view.role} {view.name} <{view.email}> as user {view.id} of organization {view.organization_id}",
        )
        return 0

    return await _with_database(settings, work)


async def _cmd_integrations_add(args: argparse.Namespace, settings: Settings) -> int:
    from lma_bot.crypto import SecretBox
    from lma_bot.integrations.service import add_integration, parse_settings

    pairs = parse_settings(args.set or [])

    async def work(database: Database, settings: Settings) -> int:
        box = SecretBox(settings.encryption_keys)
        async with database.uow(args.org) as session:
            created = await add_integration(
                session,
                org_id=args.org,
                provider=args.provider,
                settings=pairs,
                box=box,
                public_url=settings.public_url,
            )
        if args.json:
            _out(json.dumps(dataclasses.asdict(created)))
        else:
            lines = [
                f"created {created.provider} integration {created.id} for organization {created.organization_id}"
            ]
            if created.webhook_url is not None:
                lines.append(f"webhook URL: {created.webhook_url}")
            lines += [f"{name}: {value}" for name, value in created.generated_secrets.items()]
            if created.webhook_url is not None:
                lines.append("the URL and secrets are shown only now; store them in the sender's settings")
            _out("\n".join(lines))
        return 0

    return await _with_database(settings, work, require=("encryption_keys",))


async def _cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from lma_bot.crypto import SecretBox
    from lma_bot.secrets_rotation import rotate_all

    async def work(database: Database, settings: Settings) -> int:
        report = await rotate_all(database, SecretBox(settings.encryption_keys))
        if args.json:
            _out(json.dumps(dataclasses.asdict(report)))
        else:
            _out(
                f"re-encrypted {report.integrations} integration secret(s) and {report.slack_installations} "
                f"Slack token(s) in {report.organizations} organization(s) under the newest key"
            )
        return 0

    return await _with_database(settings, work, require=("encryption_keys",))


async def _cmd_webhooks_replay(args: argparse.Namespace, settings: Settings) -> int:
    from lma_bot.webhooks.replay import replay_event

    async def work(database: Database, settings: Settings) -> int:
        result = await replay_event(database, args.event_id)
        if args.json:
            _out(json.dumps(result.as_json()))
        elif result.duplicates:
            _out(f"webhook event {args.event_id} was already processed; nothing to do")
        elif result.failed:
            _out(f"webhook event {args.event_id} failed again: {result.errors[0]['error']}")
        else:
            state = "processed" if result.processed else "ignored"
            _out(f"webhook event {args.event_id} {state}")
        return 1 if result.failed else 0

    return await _with_database(settings, work)


async def _cmd_rescore(args: argparse.Namespace, settings: Settings) -> int:
    from lma_bot.redis import RedisKeys, open_redis
    from lma_bot.scoring.publish import ScorePublisher
    from lma_bot.scoring.rescore import rescore

    def progress(done: int, total: int) -> None:
        if args.json or (not sys.stderr.isatty() and done not in (0, total)):
            return
        width = 30
        filled = width * done // total if total else width
        sys.stderr.write(f"\rrescoring [{'#' * filled}{'.' * (width - filled)}] {done}/{total} leads")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    async def work(database: Database, settings: Settings) -> int:
        if args.org not in await database.organization_ids(include_inactive=True):
            raise UsageError(f"no organization {args.org}")
        assert settings.redis_url is not None
        redis = await open_redis(settings.redis_url)
        try:
            publisher = ScorePublisher(redis, RedisKeys(settings.redis_prefix))
            summary = await rescore(database, args.org, publisher=publisher, progress=progress)
        finally:
            await redis.aclose()
        if args.json:
            _out(json.dumps(summary.as_json()))
        else:
            _out(
                f"rescored organization {summary.org_id}: {summary.leads} leads, {summary.rules} active rules; "
                f"{summary.changed} scores changed (+{summary.points_added}/-{summary.points_removed} points, "
                f"{summary.history_rows} history rows, {summary.became_hot} became hot) in {summary.seconds:.1f} s"
            )
        return 0

    return await _with_database(settings, work)


async def _cmd_workflows_add(args: argparse.Namespace, settings: Settings) -> int:
    from lma_bot.workflows.conditions import parse_trigger, validate_conditions
    from lma_bot.workflows.service import create_workflow
    from lma_bot.workflows.ssrf import parse_url

    trigger = parse_trigger(args.trigger)
    parse_url(args.url)
    conditions: Any = {}
    if args.conditions is not None:
        try:
            conditions = json.loads(args.conditions)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--conditions is not JSON: {exc.msg} at character {exc.pos}") from None
    validate_conditions(trigger, conditions)

    async def work(database: Database, settings: Settings) -> int:
        async with database.uow(args.org) as session:
            workflow = await create_workflow(
                session,
                org_id=args.org,
                name=args.name,
                trigger=trigger.value,
                url=args.url,
                conditions=conditions,
                n8n_workflow_id=args.n8n_id,
            )
            view = {
                "id": workflow.id,
                "organization_id": workflow.organization_id,
                "name": workflow.name,
                "trigger": trigger.value,
                "conditions": workflow.trigger_conditions,
                "url": workflow.webhook_url,
                "n8n_workflow_id": workflow.n8n_workflow_id,
                "is_active": workflow.is_active,
            }
        if args.json:
            _out(json.dumps(view))
        else:
            _out(
                f"created workflow {view['id']} {view['name']!r} for organization {args.org}: "
                f"{trigger.value} -> {view['url']}"
            )
        return 0

    return await _with_database(settings, work)


async def _cmd_workflows_list(args: argparse.Namespace, settings: Settings) -> int:
    from lma_bot.workflows.service import list_workflows

    async def work(database: Database, settings: Settings) -> int:
        async with database.uow(args.org) as session:
            views = await list_workflows(session, org_id=args.org)
        if args.json:
            _out(json.dumps([v.as_json() for v in views]))
        elif not views:
            _out(f"organization {args.org} has no workflows")
        else:
            for view in views:
                state = "active" if view.is_active else "paused"
                last = view.last_executions[0] if view.last_executions else None
                tail = f"last #{last.id} {last.status}" if last else "not run yet"
                _out(f"{view.id}\t{view.name}\t{view.trigger}\t{state}\t{view.url_host}\t{tail}")
        return 0

    return await _with_database(settings, work)


# ---------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lma-bot", description="Lead-management chat-ops bot and webhook gateway.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        sub: Any, name: str, handler: Callable[..., Awaitable[int]], help_text: str
    ) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler, long_running=name in ("serve", "scheduler", "playground"))
        command.add_argument("--json", action="store_true", help="print JSON on stdout")
        return command

    add(commands, "migrate", _cmd_migrate, "alembic upgrade head, then create/grant the runtime role")
    serve = add(commands, "serve", _cmd_serve, "serve Slack endpoints, webhooks, health and metrics")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_positive_int, default=None, help="default: $PORT or 8080")
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="processes serving the port together (SO_REUSEPORT); default: $WEB_CONCURRENCY or 1",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    add(commands, "scheduler", _cmd_scheduler, "run the scheduler process (reminders, expiries, decay)")
    playground = add(
        commands,
        "playground",
        _cmd_playground,
        "the bot with a local Slack stand-in at 127.0.0.1:PORT/playground",
    )
    playground.add_argument("--demo", action="store_true", help="seed a demo organization (50 leads, ...)")
    playground.add_argument("--port", type=_positive_int, default=None, help="default: $PORT or 8080")

    orgs = commands.add_parser("orgs", help="manage organizations").add_subparsers(
        dest="orgs_command", required=True, metavar="ACTION"
    )
    create = add(orgs, "create", _cmd_orgs_create, "create an organization")
    create.add_argument("--name", required=True)
    create.add_argument("--slack-team-id", default=None)

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="users_command", required=True, metavar="ACTION"
    )
    add_user_cmd = add(users, "add", _cmd_users_add, "add a user to an organization")
    add_user_cmd.add_argument("--org", type=_positive_int, required=True, metavar="ORG_ID")
    add_user_cmd.add_argument("--email", required=True)
    add_user_cmd.add_argument("--name", required=True)
    add_user_cmd.add_argument("--role", required=True, choices=("admin", "manager", "rep"))
    add_user_cmd.add_argument("--slack-user-id", default=None)
    add_user_cmd.add_argument("--timezone", default="UTC")

    integrations = commands.add_parser("integrations", help="manage integrations").add_subparsers(
        dest="integrations_command", required=True, metavar="ACTION"
    )
    add_integration_cmd = add(
        integrations,
        "add",
        _cmd_integrations_add,
        "connect n8n or an email provider (prints its webhook URL), or the organization's own SMTP server",
    )
    add_integration_cmd.add_argument("--org", type=_positive_int, required=True, metavar="ORG_ID")
    add_integration_cmd.add_argument(
        "--provider", required=True, choices=("n8n", "sendgrid", "mailgun", "postmark", "smtp")
    )
    add_integration_cmd.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="a setting or secret (repeatable)"
    )
    keys = commands.add_parser("keys", help="manage encryption keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    add(keys, "rotate", _cmd_keys_rotate, "re-encrypt every stored secret under the newest key")
    webhooks = commands.add_parser("webhooks", help="stored webhook deliveries").add_subparsers(
        dest="webhooks_command", required=True, metavar="ACTION"
    )
    replay_cmd = add(webhooks, "replay", _cmd_webhooks_replay, "process a stored delivery again")
    replay_cmd.add_argument("event_id", type=_positive_int, metavar="EVENT_ID")
    rescore_cmd = add(
        commands, "rescore", _cmd_rescore, "recompute an organization's lead scores (set-based)"
    )
    rescore_cmd.add_argument("--org", type=_positive_int, required=True, metavar="ORG_ID")
    workflows = commands.add_parser(
        "workflows", help="n8n workflows triggered by lead events"
    ).add_subparsers(dest="workflows_command", required=True, metavar="ACTION")
    add_workflow_cmd = add(
        workflows, "add", _cmd_workflows_add, "add a workflow: a lead event POSTs a signed payload to n8n"
    )
    add_workflow_cmd.add_argument("--org", type=_positive_int, required=True, metavar="ORG_ID")
    add_workflow_cmd.add_argument("--name", required=True)
    add_workflow_cmd.add_argument(
        "--trigger",
        required=True,
        metavar="TRIGGER",
        help="lead_created, status_changed, assigned, score_threshold, note_added or manual",
    )
    add_workflow_cmd.add_argument("--url", required=True, help="the n8n Webhook node's production URL")
    add_workflow_cmd.add_argument(
        "--conditions", default=None, metavar="JSON", help='e.g. {"statuses": ["qualified"]}'
    )
    add_workflow_cmd.add_argument(
        "--n8n-id", default=None, help="n8n's workflow id (default: the URL's last segment)"
    )
    list_workflows_cmd = add(
        workflows, "list", _cmd_workflows_list, "list workflows and their last executions"
    )
    list_workflows_cmd.add_argument("--org", type=_positive_int, required=True, metavar="ORG_ID")
    return parser


def _fail(code: int, message: str) -> int:
    sys.stderr.write(f"lma-bot: error: {message}\n")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        level = settings.log_level
        if not args.long_running and "log_level" not in settings.model_fields_set:
            level = "WARNING"  # operator commands print their result; progress logs only when asked
        configure_logging(level)
        handler: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]] = args.handler
        return asyncio.run(handler(args, settings))
    except ConfigError as exc:
        return _fail(EXIT_USAGE, str(exc))
    except (DomainError, UsageError, TenantError) as exc:
        return _fail(EXIT_USAGE, str(exc))
    except RoleSetupError as exc:
        return _fail(EXIT_USAGE, str(exc))
    except EmbeddedServiceError as exc:
        return _fail(EXIT_FAILURE, f"embedded services: {exc}")
    except (OperationalError, InterfaceError, OSError) as exc:
        return _fail(EXIT_FAILURE, f"cannot reach the database or Redis: {_reason(exc)}")
    except DBAPIError as exc:
        return _fail(EXIT_FAILURE, f"database error: {_reason(exc)}")
    except KeyboardInterrupt:
        return 130


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return f"{type(original).__name__}: {text}" if text else type(original).__name__


def run() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    run()
