"""``/lead show`` ack latency and throughput: the whole lma-bot web app against a bare Bolt app that only acks.

N signed ``/lead show <id>`` slash commands, ``--concurrency`` in flight, at two servers on loopback
(baseline, ours, baseline, ours, ...), each server in its own process, the fake Slack Web API (which takes
the ``response_url`` posts) in a third, the load client in this one. See bench/README.md.

    .venv/bin/python bench/slack_ack.py            # full run: N=2000 per run, 50 in flight, 3 rounds
    .venv/bin/python bench/slack_ack.py --quick    # N=300 per run
    .venv/bin/python bench/slack_ack.py --profile /tmp/ours.prof --no-write   # cProfile the ours server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import json
import logging
import os
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.fakes lives in the repository, not in the installed package
    sys.path.insert(1, str(ROOT))

import aiohttp  # noqa: E402
import slack_bolt  # noqa: E402
import slack_sdk  # noqa: E402
from _common import (  # noqa: E402
    RESULTS,
    backend_cpu,
    command_line,
    cpu_delta,
    create_database,
    drop_database,
    is_local,
    load_average,
    machine_info,
    percentile_ms,
    proc_cpu_seconds,
    server_info,
    server_url_from,
    stop_process,
    until_terminated,
    write_results,
)
from aiohttp import web  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402

from lma_bot.config import DEFAULT_APP_ROLE, Settings, configure_logging  # noqa: E402
from lma_bot.db import Database  # noqa: E402
from lma_bot.dbadmin import migrate  # noqa: E402
from lma_bot.leads.schemas import LeadCreate  # noqa: E402
from lma_bot.leads.service import create_lead  # noqa: E402
from lma_bot.orgs.schemas import OrganizationCreate  # noqa: E402
from lma_bot.orgs.service import create_organization  # noqa: E402
from lma_bot.redis import RedisClient, create_redis  # noqa: E402
from lma_bot.users.schemas import UserCreate  # noqa: E402
from lma_bot.users.service import add_user  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.fakes.slack_requests import FORM, TEAM_ID, USER_ID, form_body, slack_headers, slash_command  # noqa: E402

SECTION = "slack_ack"
SECRET = "bench-signing-secret"  # noqa: S105 (a throwaway secret both servers and the client share)
TOKEN = "xoxb-bench-token"  # noqa: S105 (the fake Slack accepts any token)
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
P99_TARGET_MS = 300.0
RATIO_TARGET = 0.5
BASELINE = "baseline"
OURS = "ours"
LABELS = {BASELINE: "baseline: bare Bolt, ack only", OURS: "ours: lma-bot web app"}
CARD_WAIT_SECONDS = 180.0
BUSY_LOAD = 1.5  # 1-minute load average above which the report warns
SCRIPT = Path(__file__).resolve()

log = logging.getLogger("bench.slack_ack")


# --- the processes -----------------------------------------------------------------------------------


def _announce(**ports: int) -> None:
    """Tell the parent where we listen: one JSON line on stdout (nothing else is ever printed there)."""
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()


async def _listen(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)  # as `lma-bot serve` runs
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


def baseline_app(fake_api_url: str) -> web.Application:
    """A bare Bolt app whose ``/lead`` listener only acks, served by Bolt's own aiohttp app."""
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    bolt = AsyncApp(
        signing_secret=SECRET,
        client=AsyncWebClient(base_url=fake_api_url, token=TOKEN),
        process_before_response=False,
    )

    async def lead(ack: AsyncAck) -> None:
        await ack()

    bolt.command("/lead")(lead)
    return bolt.web_app()


def ours_settings(args: argparse.Namespace) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        LMA_REDIS_PREFIX=args.redis_prefix,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_API_URL=args.fake_api_url,
        LOG_LEVEL="INFO",
    )


async def serve(args: argparse.Namespace) -> None:
    configure_logging("INFO")  # as in production; lines go to stderr (a file the parent counts)
    if args.serve == "fake":
        fake = FakeSlack()
        await fake.start()
        control, control_port = await _listen(fake_control_app(fake))
        _announce(port=int(fake.base_url.rsplit(":", 1)[1]), control=control_port)
        try:
            await until_terminated()
        finally:
            await control.cleanup()
            await fake.stop()
        return
    if args.serve == BASELINE:
        app = baseline_app(args.fake_api_url)
    else:
        from lma_bot.entrypoints.web import create_app

        app = create_app(ours_settings(args))
    runner, port = await _listen(app)
    _announce(port=port)
    try:
        await until_terminated()
    finally:
        await runner.cleanup()


def fake_control_app(fake: FakeSlack) -> web.Application:
    """Lets the bench read the ``response_url`` posts the fake Slack received, and forget them."""

    async def posts(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        items = [
            {
                "path": p.path,
                "at": p.at,
                "text": str(p.body.get("text", "")),
                "blocks": bool(p.body.get("blocks")),
            }
            for p in fake.response_posts[since:]
        ]
        return web.json_response({"count": len(fake.response_posts), "posts": items})

    async def count(_: web.Request) -> web.Response:
        return web.json_response({"count": len(fake.response_posts), "api_calls": len(fake.calls)})

    async def reset(_: web.Request) -> web.Response:
        fake.response_posts.clear()
        fake.calls.clear()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/posts", posts)
    app.router.add_get("/count", count)
    app.router.add_post("/reset", reset)
    return app


def serve_main(args: argparse.Namespace) -> int:
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    try:
        asyncio.run(serve(args))
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    return 0


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    ports: dict[str, int]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['port']}"

    def cpu(self) -> float:
        return proc_cpu_seconds(self.pid) or 0.0

    def log_lines(self) -> int:
        try:
            return len(self.log_path.read_text(errors="replace").splitlines())
        except OSError:
            return 0

    async def stop(self) -> None:
        await stop_process(self.proc)


async def start_child(name: str, extra: list[str], logdir: Path) -> Child:
    log_path = logdir / f"{name}.log"
    with log_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--serve",
            name,
            *extra,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=str(ROOT),
        )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
    except TimeoutError:
        line = b""
    if not line:
        await proc.wait()
        raise RuntimeError(f"{name} server did not start; see {log_path}:\n{log_path.read_text()[-3000:]}")
    return Child(name, proc, json.loads(line), log_path)


# --- the load ----------------------------------------------------------------------------------------


@dataclass
class Prepared:
    tag: str
    bodies: list[bytes]
    headers: list[dict[str, str]]


def prepare(fake_url: str, tag: str, n: int, lead_id: int) -> Prepared:
    """N signed slash commands, each with its own ``response_url`` path ``/hooks/<tag>-<i>`` on the fake."""
    bodies, headers = [], []
    for i in range(n):
        body = form_body(
            slash_command(f"show {lead_id}", user_id=USER_ID, response_url=f"{fake_url}/hooks/{tag}-{i}")
        )
        bodies.append(body)
        headers.append(slack_headers(SECRET, body, content_type=FORM))
    return Prepared(tag, bodies, headers)


@dataclass
class Drive:
    seconds: float
    started: float  # time.monotonic() of the first send (CLOCK_MONOTONIC is shared by every process)
    sent_at: list[float]
    latencies: list[float]
    statuses: dict[int, int]
    non_empty_bodies: int


async def drive(session: aiohttp.ClientSession, url: str, batch: Prepared, concurrency: int) -> Drive:
    n = len(batch.bodies)
    sent_at = [0.0] * n
    latencies = [0.0] * n
    statuses: dict[int, int] = {}
    non_empty = 0
    indices = iter(range(n))

    async def worker() -> None:
        nonlocal non_empty
        for i in indices:  # shared iterator: each command is sent by exactly one worker
            sent = time.monotonic()
            sent_at[i] = sent
            async with session.post(url, data=batch.bodies[i], headers=batch.headers[i]) as response:
                body = await response.read()
            latencies[i] = time.monotonic() - sent
            statuses[response.status] = statuses.get(response.status, 0) + 1
            non_empty += 1 if body else 0

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Drive(time.monotonic() - started, started, sent_at, latencies, statuses, non_empty)


async def fake_count(session: aiohttp.ClientSession, control: str) -> int:
    async with session.get(f"{control}/count") as response:
        return int((await response.json())["count"])


async def wait_for_posts(session: aiohttp.ClientSession, control: str, count: int, limit_s: float) -> int:
    deadline = time.monotonic() + limit_s
    seen = await fake_count(session, control)
    while seen < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        seen = await fake_count(session, control)
    return seen


async def quiet(session: aiohttp.ClientSession, control: str, settle: float = 0.3) -> int:
    """Wait until the fake Slack's post count stops moving for ``settle`` seconds (lazy work drained)."""
    last = await fake_count(session, control)
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < settle:
        await asyncio.sleep(0.05)
        now = await fake_count(session, control)
        if now != last:
            last, stable_since = now, time.monotonic()
    return last


# --- measurements ------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    at: float
    server: float
    fake: float
    client: float
    postgres: dict[int, float]
    redis: float | None


@dataclass
class RunResult:
    variant: str
    round: int
    n: int
    ack_seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int]
    non_empty_bodies: int
    cards: int  # response_url posts carrying the lead's card, one per command
    cards_expected: int
    card_problems: list[str]
    cards_during_acks: int  # response_url posts already at the fake Slack when the last ack arrived
    card_p50_ms: float | None
    card_p99_ms: float | None
    all_done_s: float | None
    server_cpu_ms: float
    server_busy: float  # server CPU over the ack wall time (1.0 = one core)
    client_cpu_ms: float
    fake_cpu_ms: float
    postgres_cpu_ms: float | None
    redis_cpu_ms: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def acks_per_s(self) -> float:
        return self.n / self.ack_seconds

    @property
    def http_ok(self) -> bool:
        return self.statuses == {200: self.n} and self.non_empty_bodies == 0

    @property
    def ok(self) -> bool:
        return self.http_ok and self.cards == self.cards_expected and not self.card_problems


async def redis_cpu(redis: RedisClient) -> float | None:
    try:
        info = await redis.info("cpu")
    except Exception:  # a server without INFO (or with it renamed): no figure
        return None
    return float(info.get("used_cpu_user", 0.0)) + float(info.get("used_cpu_sys", 0.0))


@dataclass
class Env:
    session: aiohttp.ClientSession
    fake: Child
    servers: dict[str, Child]
    owner: AsyncEngine
    local_pg: bool
    redis: RedisClient
    lead_id: int
    lead_name: str
    concurrency: int

    @property
    def fake_url(self) -> str:
        return self.fake.url

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.fake.ports['control']}"

    async def snapshot(self, server: Child) -> Snapshot:
        return Snapshot(
            at=time.monotonic(),
            server=server.cpu(),
            fake=self.fake.cpu(),
            client=time.process_time(),
            postgres=await backend_cpu(self.owner) if self.local_pg else {},
            redis=await redis_cpu(self.redis),
        )


async def check_cards(env: Env, tag: str, drive_result: Drive) -> tuple[int, list[str], list[float], float]:
    """Count posts carrying the card, one per command of ``tag``; latencies command->card; last arrival."""
    async with env.session.get(f"{env.control}/posts") as response:
        posts = (await response.json())["posts"]
    prefix = f"/hooks/{tag}-"
    expected_text = f"Lead #{env.lead_id} "
    seen: dict[int, int] = {}
    problems: list[str] = []
    latencies: list[float] = []
    last = 0.0
    for post in posts:
        path = str(post["path"])
        if not path.startswith(prefix):
            problems.append(f"unexpected post to {path}")
            continue
        i = int(path.removeprefix(prefix))
        seen[i] = seen.get(i, 0) + 1
        if not (str(post["text"]).startswith(expected_text) and post["blocks"]):
            problems.append(f"post {i} is not the card: {str(post['text'])[:80]!r}")
            continue
        latencies.append(float(post["at"]) - drive_result.sent_at[i])
        last = max(last, float(post["at"]))
    doubles = [i for i, c in seen.items() if c > 1]
    if doubles:
        problems.append(f"{len(doubles)} command(s) answered more than once")
    cards = sum(1 for c in seen.values() if c >= 1)
    return cards, problems[:5], latencies, last


async def measure(env: Env, variant: str, round_no: int, n: int, warmup: int) -> RunResult:
    server = env.servers[variant]
    url = f"{server.url}/slack/events"
    lazy = variant == OURS
    # Warm-up, then let its lazy work finish and forget it, so the run starts from a quiet server.
    warm = prepare(env.fake_url, f"warm-r{round_no}-{variant}", warmup, env.lead_id)
    await drive(env.session, url, warm, env.concurrency)
    if lazy:
        await wait_for_posts(env.session, env.control, warmup, CARD_WAIT_SECONDS)
    await quiet(env.session, env.control)
    async with env.session.post(f"{env.control}/reset") as response:
        response.raise_for_status()

    tag = f"r{round_no}-{variant}"
    batch = prepare(env.fake_url, tag, n, env.lead_id)
    before = await env.snapshot(server)
    server_before = server.cpu()
    result = await drive(env.session, url, batch, env.concurrency)
    server_at_acks = server.cpu()
    cards_during_acks = await fake_count(env.session, env.control)
    all_done: float | None = None
    card_lat: list[float] = []
    problems: list[str] = []
    cards = 0
    if lazy:
        await wait_for_posts(env.session, env.control, n, CARD_WAIT_SECONDS)
        await quiet(env.session, env.control)
        cards, problems, card_lat, last = await check_cards(env, tag, result)
        all_done = last - result.started if last else None
    else:
        await quiet(env.session, env.control)
        extra = await fake_count(env.session, env.control)
        if extra:
            problems.append(f"{extra} unexpected response_url post(s)")
    after = await env.snapshot(server)
    pg = cpu_delta(before.postgres, after.postgres) if env.local_pg else None
    redis_delta = after.redis - before.redis if after.redis is not None and before.redis is not None else None
    lat = result.latencies
    return RunResult(
        variant=variant,
        round=round_no,
        n=n,
        ack_seconds=result.seconds,
        p50_ms=percentile_ms(lat, 50),
        p99_ms=percentile_ms(lat, 99),
        max_ms=max(lat) * 1000,
        statuses=result.statuses,
        non_empty_bodies=result.non_empty_bodies,
        cards=cards,
        cards_expected=n if lazy else 0,
        card_problems=problems,
        cards_during_acks=cards_during_acks,
        card_p50_ms=percentile_ms(card_lat, 50) if len(card_lat) > 1 else None,
        card_p99_ms=percentile_ms(card_lat, 99) if len(card_lat) > 1 else None,
        all_done_s=all_done,
        server_cpu_ms=(after.server - before.server) * 1000 / n,
        server_busy=(server_at_acks - server_before) / result.seconds,
        client_cpu_ms=(after.client - before.client) * 1000 / n,
        fake_cpu_ms=(after.fake - before.fake) * 1000 / n,
        postgres_cpu_ms=pg * 1000 / n if pg is not None else None,
        redis_cpu_ms=redis_delta * 1000 / n if redis_delta is not None else None,
    )


# --- setup -------------------------------------------------------------------------------------------


async def seed(app_url: str) -> tuple[int, int, str]:
    """One workspace organization, the rep who sends the commands, and the lead shown."""
    db = Database.from_url(app_url, pool_size=1, application_name="lma-bot bench seed")
    try:
        org_id = await db.next_organization_id()
        async with db.uow(org_id) as session:
            await create_organization(
                session, org_id=org_id, data=OrganizationCreate(name="Bench Co", slack_team_id=TEAM_ID)
            )
        async with db.uow(org_id) as session:
            rep = await add_user(
                session,
                org_id=org_id,
                data=UserCreate(
                    email="rita@bench.example", name="Rita Rep", role="rep", slack_user_id=USER_ID
                ),  # type: ignore[arg-type]
            )
            lead = await create_lead(
                session,
                org_id=org_id,
                data=LeadCreate(
                    email="ann@acme.example",
                    first_name="Ann",
                    last_name="Lee",
                    company="Acme",
                    source="bench",
                ),
                actor_id=rep.id,
            )
            return org_id, lead.id, lead.display_name
    finally:
        await db.dispose()


async def delete_prefix(redis: RedisClient, prefix: str) -> int:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await redis.delete(*keys)
    return len(keys)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def code_state() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [
        line for line in git("status", "--porcelain", "--", "lma_bot", "handlers").splitlines() if line
    ]
    return f"commit {commit}" + (
        f" plus {len(changed)} uncommitted change(s) under lma_bot/ and handlers/" if changed else ""
    )


@contextlib.asynccontextmanager
async def children(
    args: argparse.Namespace, bench_owner_url: str, redis_url: str, prefix: str, logdir: Path
) -> AsyncIterator[tuple[Child, dict[str, Child]]]:
    started: list[Child] = []
    try:
        fake = await start_child("fake", [], logdir)
        started.append(fake)
        api = f"{fake.url}/api/"
        baseline = await start_child(BASELINE, ["--fake-api-url", api], logdir)
        started.append(baseline)
        ours_args = [
            "--fake-api-url",
            api,
            "--database-url",
            bench_owner_url,
            "--redis-url",
            redis_url,
            "--redis-prefix",
            prefix,
        ]
        if args.profile:
            ours_args += ["--profile", args.profile]
        ours = await start_child(OURS, ours_args, logdir)
        started.append(ours)
        yield fake, {BASELINE: baseline, OURS: ours}
    finally:
        for child in reversed(started):
            await child.stop()


# --- report ------------------------------------------------------------------------------------------


def best(results: list[RunResult], variant: str) -> RunResult:
    return max((r for r in results if r.variant == variant), key=lambda r: r.acks_per_s)


def _f(value: float | None, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if value is not None else "n/a"


def verdict(base: RunResult, ours: RunResult) -> tuple[bool, bool, float]:
    ratio = ours.acks_per_s / base.acks_per_s
    return ours.p99_ms <= P99_TARGET_MS, ratio >= RATIO_TARGET, ratio


def run_line(r: RunResult) -> str:
    cards = (
        f"cards {r.cards}/{r.cards_expected} ({r.cards_during_acks} during the acks)"
        if r.variant == OURS
        else "no lazy work"
    )
    card_lat = (
        f", command->card p50 {_f(r.card_p50_ms, 0)} / p99 {_f(r.card_p99_ms, 0)} ms, all done {_f(r.all_done_s)} s"
        if r.variant == OURS
        else ""
    )
    return (
        f"round {r.round} {r.variant:<8}: {r.acks_per_s:6.0f} acks/s, p50 {r.p50_ms:6.1f} p99 {r.p99_ms:6.1f} "
        f"max {r.max_ms:6.1f} ms; HTTP {r.statuses}{' non-empty bodies: ' + str(r.non_empty_bodies) if r.non_empty_bodies else ''}; "
        f"{cards}{card_lat}; CPU ms/req server {r.server_cpu_ms:.2f} (busy {r.server_busy:.0%}), client "
        f"{r.client_cpu_ms:.2f}, fake {r.fake_cpu_ms:.2f}, pg {_f(r.postgres_cpu_ms)}, redis {_f(r.redis_cpu_ms)}"
        f"{'; ' + '; '.join(r.card_problems) if r.card_problems else ''} -> {'ok' if r.ok else 'FAILED'}"
    )


def _http(r: RunResult) -> str:
    shown = ", ".join(f"{count}x{status}" for status, count in sorted(r.statuses.items()))
    return shown + (f", {r.non_empty_bodies} non-empty" if r.non_empty_bodies else "")


def render_section(
    *,
    command: str,
    when: dt.datetime,
    machine: str,
    code: str,
    n: int,
    concurrency: int,
    warmup: int,
    rounds: int,
    results: list[RunResult],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    log_lines: dict[str, int],
    profile_note: str | None,
) -> str:
    base, ours = best(results, BASELINE), best(results, OURS)
    p99_ok, ratio_ok, ratio = verdict(base, ours)
    per_round = []
    for round_no in range(1, rounds + 1):
        b = next(r for r in results if r.round == round_no and r.variant == BASELINE)
        o = next(r for r in results if r.round == round_no and r.variant == OURS)
        per_round.append(verdict(b, o))
    every = all(p and q for p, q, _ in per_round)
    met = p99_ok and ratio_ok
    lines = [
        "## slack_ack: `/lead show` ack latency against a bare Bolt app",
        "",
        f"- Command: `{command}` (inside `flock /tmp/lma-bench.lock`)",
        f"- Date (UTC): {when:%Y-%m-%d %H:%M:%S}",
        f"- Machine: {machine}",
        f"- Load average (1/5/15 min) before measuring: {load_before[0]:.2f} / {load_before[1]:.2f} / "
        f"{load_before[2]:.2f}; after: {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}"
        + (
            " - **a busy machine** (other processes competed for the 2 CPUs): absolute numbers are low and "
            "noisy for both variants; the ratio is from the same rounds"
            if max(load_before[0], load_after[0]) > BUSY_LOAD
            else ""
        ),
        f"- Code: {code}",
        f"- Parameters: N={n} signed `/lead show <id>` commands per run, {concurrency} in flight (one aiohttp "
        f"client session, keep-alive, connection limit {concurrency}), warm-up {warmup} commands before each "
        f"run; {rounds} rounds ({', '.join([BASELINE, OURS] * rounds)}); best round (highest acks/s) of each "
        f"shown. Targets: ours p99 <= {P99_TARGET_MS:.0f} ms and ours >= {RATIO_TARGET}x the bare Bolt "
        "throughput.",
        "",
        "| variant | acks/s | p50 ms | p99 ms | max ms | lazy cards posted |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in (base, ours):
        cards = f"{r.cards}/{r.cards_expected}" if r.variant == OURS else "0 (none expected)"
        lines.append(
            f"| {LABELS[r.variant]} | {r.acks_per_s:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} | {cards} |"
        )
    round_word = "in every round" if every else "not in every round (see all rounds)"
    lines += [
        "",
        f"Ratio ours/baseline: throughput {ratio:.2f}x, p50 latency {ours.p50_ms / base.p50_ms:.2f}x, "
        f"p99 latency {ours.p99_ms / base.p99_ms:.2f}x.",
        "",
        (f"**Targets met** (best rounds; {round_word})" if met else "**Targets MISSED** (best rounds)")
        + f": p99 {ours.p99_ms:.1f} ms <= {P99_TARGET_MS:.0f} ms ({'met' if p99_ok else 'MISSED'}), "
        f"throughput {ratio:.2f}x {'>=' if ratio_ok else '<'} {RATIO_TARGET}x of bare Bolt "
        f"({'met' if ratio_ok else 'MISSED'}). Per round (ours vs that round's baseline): "
        + "; ".join(
            f"round {i}: {q:.2f}x, p99 {'ok' if p else 'over'}"
            for i, (p, _, q) in enumerate(per_round, start=1)
        )
        + ".",
        "",
        "- **baseline**: `slack_bolt.async_app.AsyncApp(signing_secret, client=AsyncWebClient(base_url=<fake "
        "Slack>, token=...), process_before_response=False)` with one `@app.command('/lead')` listener that only "
        "`await ack()`s, served by Bolt's own aiohttp app (`app.web_app()`: Bolt verifies the signature, "
        "authorizes with `auth.test` once and caches it, dispatches).",
        "- **ours**: `lma_bot.entrypoints.web.create_app(settings)` (single-workspace mode, `SLACK_BOT_TOKEN`, "
        "`SLACK_API_URL` = the fake Slack, default pool sizes): `SlackGateway` (signature + timestamp check, body "
        "parse, `response_url` host check), then Bolt (`authorize` = our `Authorizer`, "
        "`process_before_response=False`) and the `/lead` listeners: the ack listener parses `show <id>` and acks "
        "with no body; the lazy listener resolves the workspace and the rep (PostgreSQL, then in-process caches "
        "of 30 s / 5 s), reads the lead card (Redis read-through cache) and posts it to `response_url` through a "
        "pooled aiohttp session. Lazy jobs run in `handlers.slack.lazy.BoundedLazyListenerRunner`: at most 4 at "
        "once, the rest queued in arrival order, and a job about to start first waits while Slack requests are "
        "being answered (at most 0.25 s per job, and not at all once it has been queued 2 s), so a burst of "
        'commands is acked first and its cards follow (column "cards during acks": cards already posted when '
        'the last ack arrived; "command->card" shows the price).',
        "- Method: each server runs in its own process (`--serve baseline` / `--serve ours` of this script, "
        "`web.AppRunner(access_log=None)` on 127.0.0.1 as `lma-bot serve` does, logging at INFO as in "
        "production); the fake Slack Web API (`tests.fakes.slack_api.FakeSlack`, which also takes the "
        "`response_url` posts) in a third; the load client (this process) in a fourth. Requests are built and "
        "signed (`tests.fakes.slack_requests`, as Slack signs) before the clock starts; ack latency is from "
        "sending a POST to having read its whole HTTP response, which must be a 200 with an empty body. Both "
        "servers get identical request shapes from the same client; the baseline ignores `response_url`. Ours "
        "runs against a database built for the run (`lma_bench_ack_*`, `lma_bot.dbadmin.migrate`, dropped at the "
        "end) holding one workspace organization, the rep sending the commands and the one lead shown; Redis "
        "keys live under a fresh `lma-bench-ack:*:` prefix, deleted at the end.",
        "- Ours' lazy listeners run in the same process as the acks (Bolt hands them to our bounded runner as it "
        "acks), so the ack numbers include whatever lazy work the runner lets through. After each ours run the bench waits "
        "until the fake Slack holds one `response_url` post per command carrying the lead's card "
        '(`Lead #<id> ...` with blocks) and fails the run if not. "command->card" is from sending a command to '
        'its card arriving at the fake Slack; "all done" from the first command to the last card.',
        "- Bolt with `process_before_response=False` polls for the ack every 10 ms (`asyncio.sleep(0.01)` in "
        "`AsyncioListenerRunner.run`), for both variants.",
        "- With 2 cores the load client, both servers, the fake Slack, PostgreSQL and Redis share the machine; "
        "the CPU columns show who used it. Server CPU is the server process's CPU time (`/proc/PID/schedstat`) "
        'from the first command until the last lazy post; "busy" is that process\'s CPU over the wall time of '
        "the acks (100% = one core: a single-process asyncio server cannot go faster). PostgreSQL = the "
        "benchmark database's backends connected at both snapshots; Redis = `INFO cpu` of the whole server. "
        f"Server log lines written over the whole bench: baseline {log_lines[BASELINE]}, ours {log_lines[OURS]}.",
    ]
    if profile_note:
        lines.append(f"- {profile_note}")
    lines += [
        "",
        "All rounds (CPU in ms per request):",
        "",
        "| round | variant | acks/s | p50 ms | p99 ms | max ms | HTTP | lazy cards | cards during acks "
        "| command->card p50 / p99 ms "
        "| all done s | server CPU | server busy | client CPU | fake Slack CPU | PostgreSQL CPU | Redis CPU | check |",
        "|---:|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lazy = r.variant == OURS
        cards = f"{r.cards}/{r.cards_expected}" if lazy else "0 (none expected)"
        card_lat = f"{_f(r.card_p50_ms, 1)} / {_f(r.card_p99_ms, 1)}" if lazy else "-"
        lines.append(
            f"| {r.round} | {r.variant} | {r.acks_per_s:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} | "
            f"{_http(r)} | {cards} | {r.cards_during_acks if lazy else '-'} | {card_lat} | {_f(r.all_done_s) if lazy else '-'} | {r.server_cpu_ms:.2f} | "
            f"{r.server_busy:.0%} | {r.client_cpu_ms:.2f} | {r.fake_cpu_ms:.2f} | {_f(r.postgres_cpu_ms)} | "
            f"{_f(r.redis_cpu_ms)} | {'ok' if r.ok else 'FAILED: ' + '; '.join(r.card_problems)} |"
        )
    return "\n".join(lines) + "\n"


def profile_summary(path: str, limit: int = 25) -> str:
    stats = pstats.Stats(path)
    out = []
    for key in ("tottime", "cumulative"):
        stream = _Capture()
        pstats.Stats(path, stream=stream).sort_stats(key).print_stats(limit)  # type: ignore[arg-type]
        out.append(stream.text)
    del stats
    return "\n".join(out)


class _Capture:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, s: str) -> int:
        self.parts.append(s)
        return len(s)

    @property
    def text(self) -> str:
        return "".join(self.parts)


# --- main --------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace, argv: list[str]) -> int:
    n: int = args.n if args.n is not None else (300 if args.quick else 2000)
    concurrency: int = args.concurrency
    rounds: int = args.rounds
    warmup = min(200, max(n // 10, concurrency))
    if n < 2 or concurrency < 1 or rounds < 1:
        print("--n must be at least 2, --concurrency and --rounds at least 1", file=sys.stderr)
        return 2
    server_url = server_url_from(args.server_url)
    redis_url = args.redis_url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    prefix = f"lma-bench-ack:{uuid.uuid4().hex[:8]}:"

    bench = await create_database(server_url, prefix="lma_bench_ack")
    print(f"database {bench.db_name} on {make_url(server_url).render_as_string(hide_password=True)}")
    owner = create_async_engine(bench.owner_url, pool_size=1)
    redis = create_redis(redis_url)
    results: list[RunResult] = []
    log_lines = {BASELINE: 0, OURS: 0}
    try:
        await migrate(bench.owner_url, DEFAULT_APP_ROLE)
        _, lead_id, lead_name = await seed(bench.app_url)
        redis_version = (await redis.info("server")).get("redis_version", "?")
        machine = machine_info(
            await server_info(owner) + f"; Redis {redis_version}",
            libraries={
                "slack_bolt": slack_bolt.version.__version__,
                "slack_sdk": slack_sdk.version.__version__,
                "aiohttp": aiohttp.__version__,
            },
            placement="load client, servers, fake Slack, PostgreSQL and Redis all on the same host",
        )
        print(f"machine: {machine}")
        print(f"N={n} per run, {concurrency} in flight, warm-up {warmup} per run, {rounds} rounds")
        with tempfile.TemporaryDirectory(prefix="lma-bench-ack-") as tmp:
            async with (
                children(args, bench.owner_url, redis_url, prefix, Path(tmp)) as (fake, servers),
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=concurrency + 2),
                    timeout=aiohttp.ClientTimeout(total=60),
                ) as session,
            ):
                env = Env(
                    session=session,
                    fake=fake,
                    servers=servers,
                    owner=owner,
                    local_pg=is_local(bench.owner_url),
                    redis=redis,
                    lead_id=lead_id,
                    lead_name=lead_name,
                    concurrency=concurrency,
                )
                load_before = load_average()
                print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
                for round_no in range(1, rounds + 1):
                    for variant in (BASELINE, OURS):
                        result = await measure(env, variant, round_no, n, warmup)
                        results.append(result)
                        print(run_line(result), flush=True)
                load_after = load_average()
                print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
            logs = {name: _read(Path(tmp, f"{name}.log")) for name in (BASELINE, OURS)}
            log_lines = {name: text.count("\n") for name, text in logs.items()}
            for name, text in logs.items():
                if text.strip():
                    print(f"--- {name} server log (last lines) ---\n" + "\n".join(text.splitlines()[-10:]))
    finally:
        with contextlib.suppress(Exception):
            await delete_prefix(redis, prefix)
        await redis.aclose()
        await owner.dispose()
        await drop_database(server_url, bench.db_name)
        print(f"dropped {bench.db_name}")

    base, ours = best(results, BASELINE), best(results, OURS)
    p99_ok, ratio_ok, ratio = verdict(base, ours)
    print()
    print(f"{'variant':<32} {'acks/s':>8} {'p50 ms':>8} {'p99 ms':>8}   (best of {rounds} rounds)")
    for r in (base, ours):
        print(f"{LABELS[r.variant]:<32} {r.acks_per_s:8.0f} {r.p50_ms:8.1f} {r.p99_ms:8.1f}")
    print(
        f"ratio ours/baseline: throughput {ratio:.2f}x (target >= {RATIO_TARGET}: {'met' if ratio_ok else 'MISSED'}), "
        f"ours p99 {ours.p99_ms:.1f} ms (target <= {P99_TARGET_MS:.0f}: {'met' if p99_ok else 'MISSED'})"
    )
    all_ok = all(r.ok for r in results)
    print(f"checks: {'every ack 200/empty, one card per command' if all_ok else 'FAILED (see above)'}")
    profile_note = None
    if args.profile:
        print(profile_summary(args.profile))
        profile_note = "The ours server ran under cProfile (`--profile`), which slows it down."

    if not args.no_write:
        section = render_section(
            command=command_line("bench/slack_ack.py", argv),
            when=dt.datetime.now(dt.UTC),
            machine=machine,
            code=code_state(),
            n=n,
            concurrency=concurrency,
            warmup=warmup,
            rounds=rounds,
            results=results,
            load_before=load_before,
            load_after=load_after,
            log_lines=log_lines,
            profile_note=profile_note,
        )
        write_results(SECTION, section)
        print(f"wrote {RESULTS}")
    return 0 if all_ok else 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--n", type=int, default=None, help="commands per run (default 2000; 300 with --quick)"
    )
    parser.add_argument("--concurrency", type=int, default=50, help="commands in flight (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of baseline + ours (default 3)")
    parser.add_argument("--quick", action="store_true", help="N=300 per run")
    parser.add_argument(
        "--server-url",
        default=None,
        help="PostgreSQL server whose user may create databases (default: TEST_DATABASE_URL, DATABASE_URL, "
        "else the local default)",
    )
    parser.add_argument("--redis-url", default=None, help=f"default: REDIS_URL, else {DEFAULT_REDIS_URL}")
    parser.add_argument("--no-write", action="store_true", help=f"do not touch {RESULTS.name}")
    parser.add_argument("--profile", default=None, metavar="PATH", help="cProfile the ours server into PATH")
    # internal: run one of the servers (started by the bench itself)
    parser.add_argument("--serve", choices=["fake", BASELINE, OURS], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--fake-api-url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--redis-prefix", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv[1:])


if __name__ == "__main__":
    arguments = parse_args(sys.argv)
    if arguments.serve:
        sys.exit(serve_main(arguments))
    sys.exit(asyncio.run(main(arguments, sys.argv)))
