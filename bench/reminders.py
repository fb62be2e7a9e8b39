"""Reminder delivery under per-channel pacing: N reminders due in the same second for U users, sent by real
``lma-bot scheduler`` processes to a fake Slack that enforces about one message per second per DM channel.

Measures duplicates and missing messages (both must be 0), lateness beyond what the pacing forces (for a user
with k reminders the i-th message cannot arrive before ``due + (i-1) s``; lateness = arrival - that), the
time until the last message and messages/s, against the ideal (the pacing-forced finish, ``(k_max-1) s``) and
an "ideal sender" run against the same fake Slack in the same run. See bench/README.md.

    .venv/bin/python bench/reminders.py            # full run: 10,000 reminders for 500 users, 2 schedulers
    .venv/bin/python bench/reminders.py --quick    # 1,000 reminders for 100 users
    .venv/bin/python bench/reminders.py --n 2000 --users 200 --processes 3 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.fakes lives in the repository, not in the installed package
    sys.path.insert(1, str(ROOT))

import aiohttp  # noqa: E402
import apscheduler  # noqa: E402
import redis as redis_lib  # noqa: E402
import slack_sdk  # noqa: E402
from _common import (  # noqa: E402
    RESULTS,
    backend_cpu,
    command_line,
    create_database,
    drop_database,
    is_local,
    load_average,
    machine_info,
    proc_cpu_seconds,
    server_info,
    server_url_from,
    stop_process,
    until_terminated,
    write_results,
)
from aiohttp import web  # noqa: E402
from slack_sdk.errors import SlackApiError  # noqa: E402
from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402

from handlers.slack.blocks.reminders import METADATA_EVENT, reminder_dm, reminder_text  # noqa: E402
from lma_bot.config import DEFAULT_APP_ROLE, configure_logging  # noqa: E402
from lma_bot.db import Database  # noqa: E402
from lma_bot.dbadmin import migrate  # noqa: E402
from lma_bot.leads.schemas import LeadCreate  # noqa: E402
from lma_bot.leads.service import create_lead  # noqa: E402
from lma_bot.orgs.schemas import OrganizationCreate  # noqa: E402
from lma_bot.orgs.service import create_organization  # noqa: E402
from lma_bot.redis import RedisClient, RedisKeys, create_redis  # noqa: E402
from lma_bot.reminders.queue import DueQueue, Member  # noqa: E402
from lma_bot.users.schemas import UserCreate  # noqa: E402
from lma_bot.users.service import add_user  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.fakes.slack_requests import TEAM_ID  # noqa: E402

SECTION = "reminders"
TOKEN = "xoxb-bench-reminders"  # noqa: S105 (the fake Slack accepts any token)
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
P99_TARGET_S = 2.0
PACE_S = 1.0  # Slack: about one message per second per channel; the forced times use it
#: The fake Slack refuses a second message to a channel within this: 1 s less an allowance for the jitter
#: between a sender's clock and the arrival (Slack itself tolerates short bursts). --slack-pace changes it.
FAKE_PACE_S = 0.9
CONNECTIONS = 100  # the ideal sender's connection pool, opened before the reminders fall due
LEAD_TIME_S = 3.0  # reminders are written and queued this long before they fall due
SCRIPT = Path(__file__).resolve()
LMA_BOT = str(Path(sys.executable).parent / "lma-bot")

log = logging.getLogger("bench.reminders")


# --- the fake Slack process ------------------------------------------------------------------------


def _announce(**ports: int) -> None:
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()


def fake_control_app(fake: FakeSlack, pace: float) -> web.Application:
    """Lets the bench read every ``chat.postMessage`` the fake received (wall-clock arrival) and reset it."""

    async def posts(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        offset = time.time() - time.monotonic()  # Call.at is monotonic; the bench compares with due times
        rows = []
        for call in fake.calls[since:]:
            if call.method != "chat.postMessage":
                continue
            meta = call.params.get("metadata") or {}
            payload = meta.get("event_payload") or {} if isinstance(meta, dict) else {}
            carried = payload.get("reminder_ids")
            if carried is None:  # a one-reminder message of the old shape
                carried = [payload["reminder_id"]] if payload.get("reminder_id") is not None else []
            rows.append(
                [
                    fake._resolve_channel(str(call.params.get("channel") or "")),
                    call.at + offset,
                    call.status,
                    [str(rid) for rid in carried],
                    str(payload.get("send_key", "")),
                ]
            )
        return web.json_response({"count": len(fake.calls), "posts": rows})

    async def count(_: web.Request) -> web.Response:
        carried = 0  # reminders the stored messages carry
        for message in fake.messages.values():
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            carried += len(payload.get("reminder_ids") or [])
        return web.json_response(
            {"messages": len(fake.messages), "reminders": carried, "calls": len(fake.calls)}
        )

    async def reset(_: web.Request) -> web.Response:
        fake.reset()
        fake.pace_channels(pace)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/posts", posts)
    app.router.add_get("/count", count)
    app.router.add_post("/reset", reset)
    return app


async def serve_fake(pace: float) -> None:
    configure_logging("WARNING")
    fake = FakeSlack()
    fake.pace_channels(pace)
    await fake.start()
    runner = web.AppRunner(fake_control_app(fake, pace), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    _announce(port=int(fake.base_url.rsplit(":", 1)[1]), control=int(runner.addresses[0][1]))
    try:
        await until_terminated()
    finally:
        await runner.cleanup()
        await fake.stop()


# --- child processes -------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    log_path: Path
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return proc_cpu_seconds(self.pid) or 0.0

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    async def stop(self) -> None:
        await stop_process(self.proc)


async def start_fake(logdir: Path, pace: float) -> Child:
    log_path = logdir / "fake.log"
    with log_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--serve-fake",
            "--slack-pace",
            str(pace),
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
        raise RuntimeError(f"the fake Slack did not start; see {log_path}:\n{log_path.read_text()[-3000:]}")
    return Child("fake", proc, log_path, json.loads(line))


async def start_schedulers(count: int, env: dict[str, str], logdir: Path, command: list[str]) -> list[Child]:
    """``count`` real ``lma-bot scheduler`` processes; returns once each has logged ``scheduler.started``."""
    children = []
    for i in range(count):
        log_path = logdir / f"scheduler-{i + 1}.log"
        with log_path.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *command,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=str(ROOT),
            )
        children.append(Child(f"scheduler-{i + 1}", proc, log_path))
    deadline = time.monotonic() + 60
    while not all("scheduler.started" in c.log_text() for c in children):
        dead = [c for c in children if c.proc.returncode is not None]
        if dead or time.monotonic() > deadline:
            for c in children:
                await c.stop()
            raise RuntimeError(
                "a scheduler did not start:\n" + "\n".join(c.log_text()[-2000:] for c in children)
            )
        await asyncio.sleep(0.1)
    return children


# --- setup -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    org_id: int
    users: list[tuple[int, str]]  # (user id, Slack user id)
    lead_id: int
    lead_name: str


async def seed(app_url: str, users: int) -> World:
    """One workspace organization, ``users`` reps with Slack accounts, and the lead the reminders are about."""
    db = Database.from_url(app_url, pool_size=1, application_name="lma-bot bench seed")
    try:
        org_id = await db.next_organization_id()
        async with db.uow(org_id) as session:
            await create_organization(
                session, org_id=org_id, data=OrganizationCreate(name="Bench Co", slack_team_id=TEAM_ID)
            )
        made: list[tuple[int, str]] = []
        async with db.uow(org_id) as session:
            for i in range(users):
                slack_id = f"U{i:07d}"
                user = await add_user(
                    session,
                    org_id=org_id,
                    data=UserCreate(
                        email=f"rep{i}@bench.example", name=f"Rep {i}", role="rep", slack_user_id=slack_id
                    ),  # type: ignore[arg-type]
                )
                made.append((user.id, slack_id))
            lead = await create_lead(
                session,
                org_id=org_id,
                data=LeadCreate(email="ann@acme.example", first_name="Ann", last_name="Lee", company="Acme"),
                actor_id=made[0][0],
            )
            return World(org_id, made, lead.id, lead.display_name)
    finally:
        await db.dispose()


def assignment(n: int, users: int, seed_value: int = 1) -> list[int]:
    """User index of each of the ``n`` reminders: as even as possible (k = n/users each), shuffled."""
    owners = [i % users for i in range(n)]
    random.Random(seed_value).shuffle(owners)
    return owners


async def create_reminders(
    owner: AsyncEngine, redis: RedisClient, keys: RedisKeys, world: World, owners: list[int], due: dt.datetime
) -> list[int]:
    """Insert the reminders (one statement, as the owner) and queue them all at ``due``: ids, in order."""
    user_ids = [world.users[i][0] for i in owners]
    async with owner.begin() as conn:
        rows = await conn.execute(
            text(
                "INSERT INTO reminders (organization_id, lead_id, user_id, created_by, due_at, message) "
                "SELECT :org, :lead, u, u, :due, 'bench reminder ' || ord "
                "FROM unnest(CAST(:users AS integer[])) WITH ORDINALITY AS t(u, ord) ORDER BY ord "
                "RETURNING id"
            ),
            {"org": world.org_id, "lead": world.lead_id, "due": due, "users": user_ids},
        )
        ids = [int(r) for r in rows.scalars()]
    queue = DueQueue(redis, keys)
    score = due.timestamp()
    for start in range(0, len(ids), 1000):
        chunk = {str(Member(world.org_id, rid)): score for rid in ids[start : start + 1000]}
        await redis.zadd(queue.queue_key, chunk)
    return ids


async def delete_prefix(redis: RedisClient, prefix: str) -> int:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await redis.delete(*keys)
    return len(keys)


# --- reading the fake ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    channel: str
    at: float  # wall clock (epoch seconds) of arrival at the fake Slack
    status: int | None
    reminder_ids: tuple[str, ...]  # the reminders the message carried (its metadata)
    send_key: str


async def fake_count(session: aiohttp.ClientSession, control: str) -> int:
    """Reminders carried by the messages the fake Slack holds."""
    async with session.get(f"{control}/count") as response:
        return int((await response.json())["reminders"])


async def fake_posts(session: aiohttp.ClientSession, control: str) -> list[Post]:
    async with session.get(f"{control}/posts") as response:
        rows = (await response.json())["posts"]
    return [Post(str(c), float(at), s, tuple(map(str, rids)), str(key)) for c, at, s, rids, key in rows]


async def fake_reset(session: aiohttp.ClientSession, control: str) -> None:
    async with session.post(f"{control}/reset") as response:
        response.raise_for_status()


async def wait_for_messages(
    session: aiohttp.ClientSession, control: str, count: int, deadline: float, on_tick: Any = None
) -> int:
    seen = await fake_count(session, control)
    while seen < count and time.time() < deadline:
        await asyncio.sleep(0.25)
        seen = await fake_count(session, control)
        if on_tick is not None:
            await on_tick(seen)
    return seen


class BackendCpu:
    """CPU of the bench database's PostgreSQL backends, sampled while the run goes on: a backend that
    disconnects mid-run (pool overflow) keeps the CPU it had at its last sample."""

    def __init__(self, owner: AsyncEngine) -> None:
        self.owner = owner
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}

    async def begin(self) -> None:
        self.start = await backend_cpu(self.owner)
        self.last = dict(self.start)

    async def sample(self) -> None:
        self.last.update(await backend_cpu(self.owner))

    @property
    def seconds(self) -> float:
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in self.last.items())

    @property
    def backends(self) -> int:
        return len(self.last)


# --- analysis --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    label: str
    n: int
    due: float
    ideal_s: float
    accepted: int  # messages
    carried: int  # reminders in the accepted messages (a duplicate counts twice)
    max_per_message: int
    rejected_429: int
    other_failures: int
    duplicates: int  # deliveries of a reminder beyond its first (or of a reminder not in the run)
    missing: int  # reminders no accepted message carried
    lateness: list[float]  # per reminder: arrival of the (first) message carrying it - its due time
    paced_lateness: list[float]  # per message: arrival - the earliest the 1 s/channel pacing allows it
    first_s: float | None  # first accepted message after due
    last_s: float | None  # last accepted message after due
    timeline: list[tuple[float, int]]  # (seconds after due, reminders delivered by then)
    gaps: dict[str, int]  # gaps between consecutive accepted messages of a channel, bucketed
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return _pct(self.lateness, 50)

    @property
    def p99(self) -> float:
        return _pct(self.lateness, 99)

    @property
    def max_lateness(self) -> float:
        return max(self.lateness) if self.lateness else math.nan

    @property
    def paced_p50(self) -> float:
        return _pct(self.paced_lateness, 50)

    @property
    def paced_p99(self) -> float:
        return _pct(self.paced_lateness, 99)

    @property
    def msgs_per_s(self) -> float:
        return self.accepted / self.last_s if self.last_s else math.nan

    @property
    def reminders_per_s(self) -> float:
        return self.carried / self.last_s if self.last_s else math.nan

    @property
    def exact(self) -> bool:
        return self.duplicates == 0 and self.missing == 0


def _pct(values: list[float], pct: int) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def ideal_finish(owners: list[int], pace: float) -> float:
    """When the last message arrives if each reminder is its own message, paced per channel."""
    return (max(Counter(owners).values()) - 1) * pace


def analyse(
    label: str, posts: list[Post], expected: set[str], due: float, pace: float, ideal: float
) -> Outcome:
    accepted = sorted((p for p in posts if p.status == 200), key=lambda p: p.at)
    per_reminder = Counter(rid for p in accepted for rid in p.reminder_ids)
    first_arrival: dict[str, float] = {}
    for p in accepted:
        for rid in p.reminder_ids:
            first_arrival.setdefault(rid, p.at)
    by_channel: dict[str, list[Post]] = defaultdict(list)
    for p in accepted:
        by_channel[p.channel].append(p)
    paced = []
    gaps: Counter[str] = Counter()
    for channel_posts in by_channel.values():
        for i, p in enumerate(channel_posts):  # already in arrival order
            paced.append(p.at - (due + i * pace))
            if i:
                gaps[_gap_bucket(p.at - channel_posts[i - 1].at)] += 1
    lateness = [first_arrival[rid] - due for rid in expected if rid in first_arrival]
    marks = [1, 2, 5, 10, ideal, ideal + 1, ideal + 2, ideal + 5, ideal + 10, ideal + 30, ideal + 60]
    timeline = []
    for mark in sorted(set(marks)):
        timeline.append((mark, sum(1 for at in first_arrival.values() if at - due <= mark)))
    return Outcome(
        label=label,
        n=len(expected),
        due=due,
        ideal_s=ideal,
        accepted=len(accepted),
        carried=sum(per_reminder.values()),
        max_per_message=max((len(p.reminder_ids) for p in accepted), default=0),
        rejected_429=sum(1 for p in posts if p.status == 429),
        other_failures=sum(1 for p in posts if p.status not in (200, 429)),
        duplicates=sum(c - 1 for c in per_reminder.values() if c > 1)
        + sum(c for rid, c in per_reminder.items() if rid not in expected),
        missing=len(expected - per_reminder.keys()),
        lateness=lateness,
        paced_lateness=paced,
        first_s=accepted[0].at - due if accepted else None,
        last_s=accepted[-1].at - due if accepted else None,
        timeline=timeline,
        gaps={bucket: gaps.get(bucket, 0) for bucket in GAP_BUCKETS},
    )


GAP_BUCKETS = ("< 1 s", "1-1.5 s", "1.5-2.5 s", "2.5-3.5 s", ">= 3.5 s")


def _gap_bucket(gap: float) -> str:
    if gap < 1.0:
        return GAP_BUCKETS[0]
    if gap < 1.5:
        return GAP_BUCKETS[1]
    if gap < 2.5:
        return GAP_BUCKETS[2]
    if gap < 3.5:
        return GAP_BUCKETS[3]
    return GAP_BUCKETS[4]


# --- the ideal sender ------------------------------------------------------------------------------


async def ideal_sender(
    api_url: str, world: World, owners: list[int], due: float, pace: float
) -> dict[str, Any]:
    """Per channel: post its i-th message at ``due + i*pace`` (after a 429, again after ``Retry-After``).
    Same library (slack_sdk), same message shape (text, blocks, metadata) as the dispatcher."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS))
    client = AsyncWebClient(token=TOKEN, base_url=api_url, timeout=30, session=session)
    by_user: dict[int, list[int]] = defaultdict(list)
    for rid, u in enumerate(owners, start=1):
        by_user[u].append(rid)
    due_dt = dt.datetime.fromtimestamp(due, dt.UTC)
    retried = 0

    async def channel(u: int, rids: list[int]) -> None:
        nonlocal retried
        _, slack_id = world.users[u]
        sent = -math.inf  # when the previous accepted post was sent
        for i, rid in enumerate(rids):
            # 10 us apart per user, so the channels wake in the same order every second and a channel's
            # place in each burst (hence its arrival jitter) stays the same; never sooner than 1 s after the
            # previous accepted post (after a 429 the channel is off the grid)
            target = max(due + i * pace + u * 1e-5, sent + pace)
            while True:
                delay = target - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                attempt_at = time.time()
                try:
                    await client.chat_postMessage(
                        channel=slack_id,
                        text=reminder_text(world.lead_id, world.lead_name, f"bench reminder {rid}"),
                        blocks=reminder_dm(
                            reminder_id=rid,
                            lead_id=world.lead_id,
                            lead_name=world.lead_name,
                            message=f"bench reminder {rid}",
                            due_at=due_dt,
                            set_by_slack_id=slack_id,
                            set_by_name="Rep",
                            for_self=True,
                        ),
                        metadata={
                            "event_type": METADATA_EVENT,
                            "event_payload": {"send_key": str(uuid.uuid4()), "reminder_ids": [rid]},
                        },
                        unfurl_links=False,
                    )
                except SlackApiError as exc:
                    if exc.response.status_code != 429:
                        raise
                    retried += 1
                    target = time.time() + float(exc.response.headers.get("Retry-After", "1"))
                    continue
                sent = attempt_at
                break

    started_cpu = time.process_time()
    try:
        await asyncio.gather(*(client.auth_test() for _ in range(CONNECTIONS)))  # open the connections
        await asyncio.gather(*(channel(u, rids) for u, rids in by_user.items()))
    finally:
        await session.close()
    return {"retried_429": retried, "client_cpu_s": time.process_time() - started_cpu}


# --- measurement -----------------------------------------------------------------------------------


async def redis_stats(redis: RedisClient) -> dict[str, float]:
    """Server CPU and the call counts of the commands the dispatcher uses (whole server: approximate)."""
    out: dict[str, float] = {}
    try:
        cpu = await redis.info("cpu")
        out["cpu"] = float(cpu.get("used_cpu_user", 0.0)) + float(cpu.get("used_cpu_sys", 0.0))
        stats = await redis.info("commandstats")
    except Exception:  # a server without INFO: no figures
        return out
    for name in ("evalsha", "eval", "set", "pttl"):
        entry = stats.get(f"cmdstat_{name}")
        if isinstance(entry, dict):
            out[name] = float(entry.get("calls", 0))
    return out


async def pg_statuses(owner: AsyncEngine, org_id: int) -> tuple[dict[str, int], int]:
    async with owner.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT status, count(*), sum(attempts) FROM reminders WHERE organization_id = :o GROUP BY status"
            ),
            {"o": org_id},
        )
        statuses, attempts = {}, 0
        for status, count, tries in rows:
            statuses[str(status)] = int(count)
            attempts += int(tries or 0)
    return statuses, attempts


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


def _s(value: float | None, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if value is not None and not math.isnan(value) else "n/a"


def outcome_line(o: Outcome) -> str:
    return (
        f"{o.label}: {o.accepted} messages carrying {o.carried} of {o.n} reminders (at most "
        f"{o.max_per_message} a message), duplicates {o.duplicates}, missing {o.missing}, 429s "
        f"{o.rejected_429}; reminder lateness p50 {_s(o.p50)} s, p99 {_s(o.p99)} s, max "
        f"{_s(o.max_lateness)} s; beyond pacing per message p50 {_s(o.paced_p50)} s, p99 {_s(o.paced_p99)} s; "
        f"first {_s(o.first_s)} s, last {_s(o.last_s)} s after due; {_s(o.msgs_per_s, 0)} msgs/s"
    )


def verdict(o: Outcome) -> tuple[bool, bool]:
    return o.exact, o.p99 <= P99_TARGET_S


# --- main ------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace, argv: list[str]) -> int:
    n: int = args.n if args.n is not None else (1000 if args.quick else 10000)
    users: int = args.users if args.users is not None else (100 if args.quick else 500)
    processes: int = args.processes
    pace: float = args.slack_pace
    if n < 1 or users < 1 or processes < 1 or users > n:
        print("--n, --users and --processes must be at least 1, and --users at most --n", file=sys.stderr)
        return 2
    server_url = server_url_from(args.server_url)
    redis_url = args.redis_url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    prefix = f"lma-bench-rem:{uuid.uuid4().hex[:8]}:"
    keys = RedisKeys(prefix)
    owners = assignment(n, users)
    ideal = ideal_finish(owners, PACE_S)

    bench = await create_database(server_url, prefix="lma_bench_rem")
    print(f"database {bench.db_name} on {make_url(server_url).render_as_string(hide_password=True)}")
    owner = create_async_engine(bench.owner_url, pool_size=2)
    redis = create_redis(redis_url)
    baseline: Outcome | None = None
    ours: Outcome | None = None
    notes: dict[str, Any] = {}
    try:
        await migrate(bench.owner_url, DEFAULT_APP_ROLE)
        world = await seed(bench.app_url, users)
        redis_version = (await redis.info("server")).get("redis_version", "?")
        machine = machine_info(
            await server_info(owner) + f"; Redis {redis_version}",
            libraries={
                "slack_sdk": slack_sdk.version.__version__,
                "aiohttp": aiohttp.__version__,
                "APScheduler": apscheduler.__version__,
                "redis-py": redis_lib.__version__,
            },
            placement="bench, fake Slack, schedulers, PostgreSQL and Redis all on the same host",
        )
        print(f"machine: {machine}")
        k = Counter(owners)
        print(
            f"N={n} reminders for {users} users ({min(k.values())}-{max(k.values())} each), {processes} scheduler "
            f"processes, fake Slack pacing {pace:g} s per channel; ideal finish {ideal:.0f} s after due"
        )
        with tempfile.TemporaryDirectory(prefix="lma-bench-rem-") as tmp:
            logdir = Path(tmp)
            fake = await start_fake(logdir, pace)
            schedulers: list[Child] = []
            try:
                api_url = f"http://127.0.0.1:{fake.ports['port']}/api/"
                control = f"http://127.0.0.1:{fake.ports['control']}"
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
                    # 1. the ideal sender against the same fake Slack: the floor this machine and harness give
                    if not args.no_baseline:
                        due = math.ceil(time.time()) + 2.0
                        fake_before = fake.cpu()
                        info = await ideal_sender(api_url, world, owners, due, PACE_S)
                        posts = await fake_posts(session, control)
                        expected = {str(i) for i in range(1, n + 1)}
                        baseline = analyse("ideal sender", posts, expected, due, PACE_S, ideal)
                        baseline.extra = {**info, "fake_cpu_s": fake.cpu() - fake_before}
                        print(outcome_line(baseline), flush=True)
                        await fake_reset(session, control)

                    # 2. the schedulers
                    env = {
                        "PATH": os.environ.get("PATH", ""),
                        "HOME": os.environ.get("HOME", str(Path.home())),
                        "DATABASE_URL": bench.owner_url,
                        "REDIS_URL": redis_url,
                        "LMA_REDIS_PREFIX": prefix,
                        "SLACK_API_URL": api_url,
                        "SLACK_BOT_TOKEN": TOKEN,
                        "LOG_LEVEL": args.log_level,
                    }
                    schedulers = await start_schedulers(
                        processes, env, logdir, shlex.split(args.scheduler_command)
                    )
                    await asyncio.sleep(1.5)  # past each process's first (reconcile + empty dispatch) runs
                    due = math.ceil(time.time() + LEAD_TIME_S)
                    ids = await create_reminders(
                        owner, redis, keys, world, owners, dt.datetime.fromtimestamp(due, dt.UTC)
                    )
                    written = time.time()
                    print(
                        f"{len(ids)} reminders written and queued {due - written:.1f} s before they fall due"
                    )
                    await asyncio.sleep(max(0.0, due - time.time() - 0.5))
                    load_before = load_average()
                    local_pg = is_local(bench.owner_url)
                    pg = BackendCpu(owner)
                    if local_pg:
                        await pg.begin()
                    cpu_before = {c.name: c.cpu() for c in [fake, *schedulers]}
                    redis_before = await redis_stats(redis)
                    bench_cpu_before = time.process_time()
                    deadline = due + ideal + args.timeout

                    last_print, last_sample = [0.0], [0.0]

                    async def progress(seen: int) -> None:
                        if local_pg and time.time() - last_sample[0] >= 1:
                            last_sample[0] = time.time()
                            await pg.sample()
                        if time.time() - last_print[0] >= 5:
                            last_print[0] = time.time()
                            print(f"  t={time.time() - due:5.1f} s: {seen} reminders delivered", flush=True)

                    seen = await wait_for_messages(session, control, n, deadline, progress)
                    done_at = time.time()
                    statuses, attempts = await pg_statuses(owner, world.org_id)
                    while statuses.get("sent", 0) < n and time.time() < deadline:
                        await asyncio.sleep(0.25)
                        statuses, attempts = await pg_statuses(owner, world.org_id)
                    await asyncio.sleep(args.settle)  # anything sent twice would arrive now
                    cpu_after = {c.name: c.cpu() for c in [fake, *schedulers]}
                    if local_pg:
                        await pg.sample()
                    redis_after = await redis_stats(redis)
                    bench_cpu = time.process_time() - bench_cpu_before
                    load_after = load_average()
                    statuses, attempts = await pg_statuses(owner, world.org_id)
                    queue_sizes = await DueQueue(redis, keys).sizes()
                    posts = await fake_posts(session, control)
                    ours = analyse(
                        f"{processes} schedulers",
                        posts,
                        {str(i) for i in ids},
                        float(due),
                        PACE_S,
                        ideal,
                    )
                    pg_cpu = pg.seconds if local_pg else None
                    ours.extra = {
                        "seen_at_wait_end": seen,
                        "wait_s": done_at - due,
                        "statuses": statuses,
                        "attempts": attempts,
                        "queue_sizes": queue_sizes,
                        "cpu": {name: cpu_after[name] - cpu_before[name] for name in cpu_after},
                        "pg_cpu": pg_cpu,
                        "pg_backends": pg.backends,
                        "bench_cpu": bench_cpu,
                        "redis": {
                            key: redis_after.get(key, 0.0) - redis_before.get(key, 0.0) for key in redis_after
                        },
                    }
                    notes.update(load_before=load_before, load_after=load_after)
                    print(outcome_line(ours), flush=True)
                    print(
                        f"PostgreSQL statuses {statuses}, attempts {attempts}, queue (queued, processing) "
                        f"{queue_sizes}; CPU s {ours.extra['cpu']}, PostgreSQL {_s(pg_cpu, 1)}, bench "
                        f"{bench_cpu:.1f}; Redis {ours.extra['redis']}"
                    )
                    print("  timeline " + ", ".join(f"{m:g}s:{c}" for m, c in ours.timeline))
                    print(f"  per-channel gaps between consecutive messages: {ours.gaps}")
            finally:
                for child in [*schedulers, fake]:
                    await child.stop()
            logs = {c.name: c.log_text() for c in schedulers}
            if args.keep_logs:
                keep = Path(args.keep_logs)
                keep.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (after the measurement)
                for name, t in logs.items():
                    (keep / f"{name}.log").write_text(t)
            notes["log_lines"] = {name: t.count("\n") for name, t in logs.items()}
            notes["log_events"] = Counter(
                word
                for t in logs.values()
                for line in t.splitlines()
                for word in line.split()
                if word.startswith(("reminder.", "job.")) and "=" not in word
            )
            for name, t in logs.items():
                bad = [line for line in t.splitlines() if " ERROR " in line or "Traceback" in line]
                if bad:
                    print(f"--- {name}: {len(bad)} error line(s), last ones ---\n" + "\n".join(bad[-5:]))
    finally:
        with contextlib.suppress(Exception):
            await delete_prefix(redis, prefix)
        await redis.aclose()
        await owner.dispose()
        await drop_database(server_url, bench.db_name)
        print(f"dropped {bench.db_name}")

    assert ours is not None
    exact, p99_ok = verdict(ours)
    sent_ok = ours.extra["statuses"] == {"sent": n}
    print()
    print(f"ideal (pacing-forced) finish: {ideal:.0f} s after due")
    if baseline is not None:
        print(outcome_line(baseline))
    print(outcome_line(ours))
    print(
        f"verdict: duplicates/missing {'0/0 ok' if exact else 'FAILED'}; PostgreSQL all sent: {sent_ok}; "
        f"p99 lateness {ours.p99:.2f} s (target <= {P99_TARGET_S:.0f} s: {'met' if p99_ok else 'MISSED'})"
    )
    print(f"load average before {notes['load_before']}, after {notes['load_after']}")
    print(f"scheduler log events: {dict(notes['log_events'])}")

    if not args.no_write:
        section = render_section(
            command=command_line("bench/reminders.py", argv),
            when=dt.datetime.now(dt.UTC),
            machine=machine,
            code=code_state(),
            n=n,
            users=users,
            processes=processes,
            pace=pace,
            ideal=ideal,
            baseline=baseline,
            ours=ours,
            notes=notes,
        )
        write_results(SECTION, section)
        print(f"wrote {RESULTS}")
    return 0 if exact and sent_ok else 1


# --- report ----------------------------------------------------------------------------------------


def render_section(
    *,
    command: str,
    when: dt.datetime,
    machine: str,
    code: str,
    n: int,
    users: int,
    processes: int,
    pace: float,
    ideal: float,
    baseline: Outcome | None,
    ours: Outcome,
    notes: dict[str, Any],
) -> str:
    exact, p99_ok = verdict(ours)
    lb, la = notes["load_before"], notes["load_after"]
    extra = ours.extra
    cpu = extra["cpu"]
    span = ours.last_s or 1.0
    sched_cpu = sum(v for name, v in cpu.items() if name.startswith("scheduler"))
    rows = [baseline, ours] if baseline is not None else [ours]
    lines = [
        "## reminders: 10,000 reminders due in the same second, per-channel pacing",
        "",
        f"- Command: `{command}`",
        f"- Date (UTC): {when:%Y-%m-%d %H:%M:%S}; code: {code}",
        f"- Machine: {machine}",
        f"- Load average (1/5/15 min) before the reminders fell due: {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}; "
        f"after: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}",
        f"- Parameters: N={n} reminders, all due at the same instant, for {users} users "
        f"({n // users}-{-(-n // users)} each, shuffled), {processes} `lma-bot scheduler` processes; the fake Slack "
        f"(own process) answers a `chat.postMessage` to a DM channel less than {pace:g} s after its last accepted "
        f"one with 429 + `Retry-After` (1 s pacing less {PACE_S - pace:.1f} s allowance for arrival jitter; the "
        f"forced times below use {PACE_S:g} s).",
        f"- **Verdict**: duplicates {ours.duplicates}, missing {ours.missing} "
        f"({'ok' if exact else 'FAILED'}); PostgreSQL {extra['statuses']}; lateness per reminder p50 "
        f"{ours.p50:.2f} s, p99 {ours.p99:.2f} s against the target <= {P99_TARGET_S:.0f} s: "
        f"**{'met' if p99_ok else 'MISSED'}**. Last message {_s(ours.last_s, 1)} s after due; one message per "
        f"reminder, paced, could not finish before {ideal:.0f} s.",
        "",
        "| sender | messages | reminders carried | most in a message | duplicates | missing | 429s "
        "| reminder lateness p50 s | p99 s | max s | beyond pacing per message p50 s | p99 s | first s | last s "
        "| msgs/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in rows:
        lines.append(
            f"| {o.label} | {o.accepted} | {o.carried}/{o.n} | {o.max_per_message} | {o.duplicates} | "
            f"{o.missing} | {o.rejected_429} | {_s(o.p50)} | {_s(o.p99)} | {_s(o.max_lateness)} | "
            f"{_s(o.paced_p50)} | {_s(o.paced_p99)} | {_s(o.first_s)} | {_s(o.last_s)} | {_s(o.msgs_per_s, 0)} |"
        )
    lines += [
        "",
        "Reminders delivered by time after due (cumulative; a reminder is delivered when the first accepted "
        "message carrying it arrives):",
        "",
        "| seconds after due | " + " | ".join(f"{mark:g}" for mark, _ in ours.timeline) + " |",
        "|---|" + "---:|" * len(ours.timeline),
    ]
    for o in rows:
        lines.append(f"| {o.label} | " + " | ".join(str(count) for _, count in o.timeline) + " |")
    lines += [
        "",
        "Gaps between consecutive messages of the same DM channel (1 s is what the pacing allows):",
        "",
        "| sender | " + " | ".join(GAP_BUCKETS) + " |",
        "|---|" + "---:|" * len(GAP_BUCKETS),
    ]
    for o in rows:
        lines.append(f"| {o.label} | " + " | ".join(str(o.gaps[b]) for b in GAP_BUCKETS) + " |")
    redis_counts = extra["redis"]
    lines += [
        "",
        "- Method (changed 2026-12-06 with coalesced DMs): the schedulers now send the reminders due together "
        "for one person as one DM listing them (at most 24 a message), so the bench counts **reminders**, not "
        "messages: each accepted `chat.postMessage` carries the ids of its reminders in its metadata "
        "(`event_payload.reminder_ids`); duplicates = deliveries of a reminder beyond its first, missing = "
        "reminders no accepted message carried, and **lateness per reminder = arrival of the first message "
        "carrying it - its due time**. That is stricter than the old measure (lateness beyond what the pacing "
        "forces), which excused the i-th message of a channel `(i-1) x 1 s`: a coalesced message is not paced, "
        "so nothing is excused. The old per-message measure is still shown (beyond pacing per message: the "
        "i-th accepted message of a channel against `due + (i-1) x 1 s`) so both senders can be read both ways. "
        "Arrival = the fake Slack's clock when the request came in. msgs/s = messages / (last arrival - due).",
        f"- **ideal sender** (same run, same fake Slack, before the schedulers start), unchanged, the baseline for "
        "one message per reminder: the bench itself, with slack_sdk on one shared aiohttp session (its "
        "connections opened beforehand), posts each channel's i-th message at `due + (i-1) s` (users 10 us "
        "apart, so each second's burst has the same order; after a 429, again after `Retry-After`, and the "
        "channel's later posts no sooner than 1 s after the previous one was sent); a one-reminder DM's text, "
        "blocks and metadata. It is the floor for one message per reminder on this machine and harness: by "
        f"the per-reminder measure its last reminders cannot arrive before {ideal:.0f} s (k_max - 1 seconds).",
        "- Setup: reminders inserted in one `INSERT ... SELECT` as the owner (no `reminder.created` activity "
        f"rows) {LEAD_TIME_S:g} s before they fall due, with the schedulers already running, and queued in "
        "the `{scheduled_communications}` sorted set at the due time; one organization with a bot token "
        "(`SLACK_BOT_TOKEN`). After the last message the bench waits until PostgreSQL says every reminder is "
        "`sent`, then a further settle time for late duplicates.",
        f"- CPU over the run (due -> end of settle), seconds: schedulers {sched_cpu:.1f} "
        f"({', '.join(f'{k} {v:.1f}' for k, v in cpu.items() if k.startswith('scheduler'))}), fake Slack "
        f"{cpu.get('fake', 0.0):.1f}, PostgreSQL backends of the bench database {_s(extra['pg_cpu'], 1)} "
        f"({extra.get('pg_backends', 0)} backends seen, sampled every second), Redis "
        f"{_s(redis_counts.get('cpu'), 1)} (whole server), bench {extra['bench_cpu']:.1f}; the last message "
        f"came {span:.1f} s after due.",
        f"- Dispatcher work (Redis `INFO commandstats` deltas, whole server, so approximate if other clients "
        f"ran): EVALSHA {redis_counts.get('evalsha', 0):.0f} (claims, settles, re-queues), SET "
        f"{redis_counts.get('set', 0):.0f} (pacing slots tried, a slice's channels in one pipeline), PTTL "
        f"{redis_counts.get('pttl', 0):.0f} (slots found taken: the message waits in memory for the channel); "
        f"PostgreSQL `attempts` summed over the reminders: {extra['attempts']}. Scheduler log events: "
        + ", ".join(f"`{k}` {v}" for k, v in sorted(notes["log_events"].items()))
        + f" (log lines: {', '.join(f'{k} {v}' for k, v in notes['log_lines'].items())}).",
    ]
    if baseline is not None:
        lines.append(
            f"- Ideal sender: {baseline.extra.get('retried_429', 0)} posts retried after a 429; fake Slack CPU "
            f"{baseline.extra.get('fake_cpu_s', 0.0):.1f} s, bench CPU {baseline.extra.get('client_cpu_s', 0.0):.1f} s."
        )
    lines.append(
        "- Before coalescing (2026-12-06 03:06, commit 0df4aa8, the old per-message method): one DM per "
        "reminder, 10,000 messages, lateness beyond pacing p50 37.91 s / p99 70.18 s, last message 92.1 s after "
        "due, 109 msgs/s (the ideal sender in that run: p99 2.34 s beyond pacing, last 21.4 s)."
    )
    if notes.get("diagnosis"):
        lines += ["", notes["diagnosis"]]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=None, help="reminders (default 10000; 1000 with --quick)")
    parser.add_argument("--users", type=int, default=None, help="users (default 500; 100 with --quick)")
    parser.add_argument("--processes", type=int, default=2, help="scheduler processes (default 2)")
    parser.add_argument("--quick", action="store_true", help="1000 reminders for 100 users")
    parser.add_argument(
        "--slack-pace",
        type=float,
        default=FAKE_PACE_S,
        help=f"the fake Slack's per-channel minimum interval (default {FAKE_PACE_S:g} s: 1 s less a jitter allowance)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds past the ideal finish to wait (default 600)"
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait for late duplicates")
    parser.add_argument("--log-level", default="INFO", help="the schedulers' LOG_LEVEL (default INFO)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the ideal-sender run")
    parser.add_argument(
        "--server-url",
        default=None,
        help="PostgreSQL server whose user may create databases (default: TEST_DATABASE_URL, DATABASE_URL, "
        "else the local default)",
    )
    parser.add_argument("--redis-url", default=None, help=f"default: REDIS_URL, else {DEFAULT_REDIS_URL}")
    parser.add_argument("--no-write", action="store_true", help=f"do not touch {RESULTS.name}")
    parser.add_argument(
        "--scheduler-command",
        default=shlex.join([LMA_BOT, "scheduler"]),
        help="how to start one scheduler process (default: .venv/bin/lma-bot scheduler); for experiments",
    )
    parser.add_argument("--keep-logs", default=None, metavar="DIR", help="copy the scheduler logs into DIR")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv[1:])


if __name__ == "__main__":
    arguments = parse_args(sys.argv)
    if arguments.serve_fake:
        sys.exit(asyncio.run(serve_fake(arguments.slack_pace)) or 0)
    sys.exit(asyncio.run(main(arguments, sys.argv)))
