"""`lma-bot rescore` (set-based SQL) against a naive per-lead Python loop, on the same data in the same run.

One organization with N leads (default 100,000), 20 rules (10 on fields, 10 on events, with counts, windows
and every repeat policy) and 10 events per lead (1,000,000), built with ``INSERT ... SELECT`` as the owner.
Then:

- **ours**: the real command, ``lma-bot rescore --org ID --json`` in a subprocess as an operator runs it
  (runtime role, row-level security, history rows, ``leads.rule_points``, ``lead_score:{id}`` in Redis);
- **naive**: from the same starting state (every lead reset after each run), a per-lead loop that writes
  what the rescore writes: for each lead, read it and its events, evaluate every rule with the reference
  evaluator (:func:`lma_bot.scoring.rules.evaluate`) in Python, and when its contributions changed update the
  lead and add its history row; one unit of work as the runtime role with the ORM, as application code
  first writes it;
- **hand-tuned**: the same loop on raw asyncpg with its statements prepared once (the fastest per-lead loop
  we could write), shown next to it so the ratio is never read against a slow baseline alone.

Scores, temperatures and rule contributions must be identical for every lead, and each side's history
must add up (exit 1 otherwise). Targets: ours <= 10 s and >= 20x the naive loop.

    .venv/bin/python bench/rescore.py            # full: 100,000 leads, 1,000,000 events
    .venv/bin/python bench/rescore.py --quick    # 10,000 leads, 100,000 events
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import (
    RESULTS,
    command_line,
    create_database,
    drop_database,
    load_average,
    machine_info,
    server_info,
    server_url_from,
    write_results,
)
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import undefer

from lma_bot.config import DEFAULT_APP_ROLE
from lma_bot.db import Database
from lma_bot.dbadmin import migrate
from lma_bot.models import Lead, LeadEvent, LeadScoreHistory
from lma_bot.orgs.schemas import OrganizationCreate
from lma_bot.orgs.service import create_organization
from lma_bot.scoring import engine
from lma_bot.scoring.rescore import PARALLEL_CHUNK, WORKERS
from lma_bot.scoring.rules import EventFact, evaluate
from lma_bot.scoring.service import RuleInput, create_rule
from lma_bot.scoring.temperature import next_temperature

SECTION = "rescore"
ROOT = Path(__file__).resolve().parent.parent

FIELD_RULES: list[tuple[str, dict[str, Any], int]] = [
    ("web source", {"field": "source", "op": "eq", "value": "web"}, 5),
    ("VP title", {"field": "job_title", "op": "contains", "value": "vp"}, 10),
    ("VIP tag", {"field": "tags", "op": "contains", "value": "vip"}, 8),
    ("500+ employees", {"field": "custom_fields.employees", "op": "gte", "value": 500}, 7),
    ("free mail", {"field": "email", "op": "matches", "value": r"@(gmail|yahoo)\.com$"}, -5),
    ("late stage", {"field": "status", "op": "in", "value": ["qualified", "proposal"]}, 15),
    ("acme", {"field": "company", "op": "starts_with", "value": "acme"}, 3),
    ("enterprise plan", {"field": "custom_fields.plan", "op": "eq", "value": "enterprise"}, 12),
    ("do not contact", {"field": "do_not_contact", "op": "eq", "value": True}, -20),
    ("no phone", {"not": {"field": "phone", "op": "exists", "value": True}}, -2),
]
EVENT_RULES: list[tuple[str, dict[str, Any], int, str, int | None]] = [
    ("opens", {"event": "email_opened"}, 2, "at_most", 5),
    ("clicks", {"event": "email_clicked"}, 3, "once_per_event", None),
    ("3 opens in 7 days", {"event": "email_opened", "count": 3, "within_days": 7}, 10, "once_per_lead", None),
    ("replied", {"event": "email_replied"}, 15, "once_per_lead", None),
    ("bounced", {"event": "email_bounced"}, -10, "once_per_lead", None),
    ("meetings", {"event": "meeting_booked"}, 25, "at_most", 2),
    (
        "web clicker",
        {"all": [{"event": "email_clicked"}, {"field": "source", "op": "eq", "value": "web"}]},
        4,
        "once_per_event",
        None,
    ),
    (
        "engaged, not bounced",
        {
            "all": [
                {"event": "email_clicked", "count": 2, "within_days": 30},
                {"not": {"event": "email_bounced"}},
            ]
        },
        6,
        "once_per_lead",
        None,
    ),
    ("pricing twice a day", {"event": "pricing_page_viewed", "count": 2, "within_days": 1}, 6, "at_most", 3),
    (
        "reply or meeting",
        {"any": [{"event": "email_replied"}, {"event": "meeting_booked"}]},
        5,
        "once_per_event",
        None,
    ),
]

BUILD_LEADS = """
INSERT INTO leads (organization_id, email, first_name, company, job_title, source, status, phone, tags,
                   custom_fields, do_not_contact, created_at)
SELECT :org,
       'lead' || i || CASE i % 7 WHEN 0 THEN '@gmail.com' WHEN 1 THEN '@yahoo.com' ELSE '@corp' || (i % 997) || '.com' END,
       'Lead' || i,
       (ARRAY['Acme', 'Globex', 'Initech', 'Acme Labs', 'Umbrella'])[1 + i % 5],
       (ARRAY['VP Sales', 'Engineer', 'CTO', 'SVP Marketing', 'Analyst', NULL])[1 + i % 6],
       (ARRAY['web', 'ads', 'referral', 'event'])[1 + (i / 3) % 4],
       (ARRAY['new', 'contacted', 'qualified', 'proposal', 'lost'])[1 + (i / 7) % 5],
       CASE WHEN i % 4 = 0 THEN NULL ELSE '+1555' || i END,
       CASE i % 10 WHEN 0 THEN ARRAY['vip']::varchar[] WHEN 1 THEN ARRAY['q4', 'vip']::varchar[] ELSE ARRAY['q4']::varchar[] END,
       jsonb_build_object('employees', (i * 37) % 2000, 'plan', (ARRAY['free', 'pro', 'enterprise'])[1 + i % 3]),
       i % 50 = 0,
       now() - interval '200 days'
FROM generate_series(1, :n) AS i
"""
BUILD_EVENTS = """
INSERT INTO lead_events (organization_id, lead_id, event_type, occurred_at, dedupe_key)
SELECT :org, :first + (i % :n),
       (ARRAY['email_opened', 'email_opened', 'email_opened', 'email_opened', 'email_clicked', 'email_clicked',
              'email_delivered', 'email_delivered', 'pricing_page_viewed', 'email_replied', 'email_bounced',
              'meeting_booked'])[1 + (hashint % 12)],
       timestamptz '2026-08-01 00:00+00' + ((hashint / 12) % (90 * 24 * 60)) * interval '1 minute',
       'bench:' || i
FROM (SELECT i, abs(hashtext(i::text)) AS hashint FROM generate_series(0, :events - 1) AS i) s
"""


async def build(owner_url: str, app: Database, n: int, events_per_lead: int) -> tuple[int, float]:
    started = time.perf_counter()
    org_id = await app.next_organization_id()
    async with app.uow(org_id) as session:
        await create_organization(session, org_id=org_id, data=OrganizationCreate(name="Bench"))
        for name, criteria, points in FIELD_RULES:
            await create_rule(
                session,
                org_id=org_id,
                data=RuleInput(name=name, criteria=criteria, points=points),
                actor=None,
            )
        for name, criteria, points, policy, limit in EVENT_RULES:
            data = RuleInput(
                name=name, criteria=criteria, points=points, repeat_policy=policy, repeat_limit=limit
            )
            await create_rule(session, org_id=org_id, data=data, actor=None)
    owner = create_async_engine(owner_url)
    async with owner.begin() as conn:
        await conn.execute(text(BUILD_LEADS), {"org": org_id, "n": n})
        first = (
            await conn.execute(text("SELECT min(id) FROM leads WHERE organization_id = :o"), {"o": org_id})
        ).scalar_one()
        await conn.execute(
            text(BUILD_EVENTS), {"org": org_id, "n": n, "first": first, "events": n * events_per_lead}
        )
    async with owner.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE leads, lead_events"))
    await owner.dispose()
    return org_id, time.perf_counter() - started


NAIVE_LEAD = "SELECT * FROM leads WHERE organization_id = $1 AND id = $2"
NAIVE_EVENTS = (
    "SELECT event_type, occurred_at, id FROM lead_events WHERE organization_id = $1 AND lead_id = $2"
)
NAIVE_UPDATE = (
    "UPDATE leads SET score = $3, lead_temperature = $4, rule_points = CAST($5 AS jsonb) "
    "WHERE organization_id = $1 AND id = $2"
)
NAIVE_HISTORY = (
    "INSERT INTO lead_score_history (organization_id, lead_id, previous_score, new_score, score_change, reason, "
    "rule_id, kind, rule_deltas) VALUES ($1, $2, $3, $4, $5, $6, $7, 'rule', CAST($8 AS jsonb))"
)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _epoch(when: dt.datetime) -> str:
    """``extract(epoch FROM when)`` as PostgreSQL prints it (a JSON number)."""
    delta = when - EPOCH
    return str(Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6))


def _points(raw: Any) -> dict[str, list[Any]]:
    """A jsonb value (text on the raw connection), numbers exact."""
    return dict(json.loads(raw, parse_float=Decimal) if isinstance(raw, str) else (raw or {}))


def _same(new: dict[str, list[Any]], old: dict[str, list[Any]]) -> bool:
    """``new`` (fired as JSON text) equals ``old`` (parsed): what the statement's ``new IS DISTINCT FROM old``
    decides for jsonb."""

    def norm(entry: list[Any]) -> tuple[Decimal | None, ...]:
        return tuple(None if v is None or v == "null" else Decimal(str(v)) for v in entry)

    return new.keys() == old.keys() and all(norm(new[k]) == norm(old[k]) for k in new)


def _evaluate(
    config: Any,
    in_order: list[Any],
    active: set[str],
    lead: dict[str, Any],
    events: list[EventFact],
    old: dict[str, list[Any]],
    now: str,
) -> tuple[dict[str, list[Any]], dict[str, int], list[str]]:
    """One lead's rule contributions by the reference evaluator, as the set-based statement writes them:
    ``rule_points`` entries [points, firings, fired at], each moved rule's delta, and the reasons."""
    new: dict[str, list[Any]] = {}
    deltas: dict[str, int] = {}
    reasons: list[str] = []
    for rule in in_order:
        key = str(rule.id)
        got = evaluate(rule, lead, events)
        if got.points or got.firings:
            if rule.is_event_rule:
                fired = _epoch(got.last_fired_at) if got.last_fired_at is not None else "null"
            else:
                before = old.get(key)
                fired = str(before[2]) if before and before[2] is not None else now
            new[key] = [got.points, got.firings, fired]
        was = int(old[key][0]) if key in old else 0
        if got.points != was:
            deltas[key] = got.points - was
            how = "matched" if key not in old else ("no longer applies" if got.points == 0 else "changed")
            times = f" ({got.firings} times)" if got.firings > 1 else ""
            reasons.append(f'rule "{rule.name}" {how}{times}')
    for key in sorted(set(old) - active):  # rules no longer active: their points taken back
        if int(old[key][0]):
            deltas[key] = -int(old[key][0])
            reasons.append(f'rule "{config.names.get(int(key), "#" + key)}" no longer applies')
    return new, deltas, reasons


async def naive(app: Database, org_id: int) -> tuple[float, dict[str, float]]:
    """The per-lead loop, writing what the rescore writes, in one transaction as the runtime role, on the
    session's asyncpg connection with statements prepared once: for each lead, read it and its events,
    evaluate every active rule in Python with the reference evaluator, and when its rule contributions
    differ from ``leads.rule_points``, update the lead (score, temperature, ``rule_points``) and insert its
    history row (the same columns and values the set-based statement writes). Returns the seconds, and
    where they went."""
    started = time.perf_counter()
    spent = {"database": 0.0, "evaluate": 0.0}
    async with app.uow(org_id) as session:
        config = await engine.load_config(session, org_id)
        rules = [r for r in config.rules if r.is_active]
        in_order = sorted(rules, key=lambda r: (-r.priority, r.id))
        active = {str(r.id) for r in rules}
        raw = await (await session.connection()).get_raw_connection()
        conn = raw.driver_connection
        assert conn is not None
        now = _epoch(await conn.fetchval("SELECT now()"))
        ids = [
            int(r[0])
            for r in await conn.fetch("SELECT id FROM leads WHERE organization_id = $1 ORDER BY id", org_id)
        ]
        lead_sql = await conn.prepare(NAIVE_LEAD)
        events_sql = await conn.prepare(NAIVE_EVENTS)
        update_sql = await conn.prepare(NAIVE_UPDATE)
        history_sql = await conn.prepare(NAIVE_HISTORY)
        for lead_id in ids:
            t0 = time.perf_counter()
            row = await lead_sql.fetchrow(org_id, lead_id)
            events = [EventFact(str(r[0]), r[1], int(r[2])) for r in await events_sql.fetch(org_id, lead_id)]
            t1 = time.perf_counter()
            spent["database"] += t1 - t0
            if row is None or row["deleted_at"] is not None or row["score_locked_at"] is not None:
                continue
            lead = dict(row)
            lead["custom_fields"] = _points(lead["custom_fields"])
            old = _points(lead["rule_points"])
            new, deltas, reasons = _evaluate(config, in_order, active, lead, events, old, now)
            t2 = time.perf_counter()
            spent["evaluate"] += t2 - t1
            if _same(new, old):
                continue
            delta = sum(deltas.values())
            previous = int(row["score"])
            score = previous + delta
            temperature = (
                next_temperature(row["lead_temperature"], score, config.thresholds)
                if delta
                else row["lead_temperature"]
            )
            points = "{" + ",".join(f'"{k}":[{v[0]},{v[1]},{v[2]}]' for k, v in new.items()) + "}"
            await update_sql.fetch(org_id, lead_id, score, temperature, points)
            if deltas:
                reason = ("rescore: " + ", ".join(reasons))[:500]
                rule_id = int(next(iter(deltas))) if len(deltas) == 1 else None
                await history_sql.fetch(
                    org_id, lead_id, previous, score, delta, reason, rule_id, json.dumps(deltas)
                )
            spent["database"] += time.perf_counter() - t2
    return time.perf_counter() - started, spent


async def naive_orm(app: Database, org_id: int) -> tuple[float, dict[str, float]]:
    """The per-lead loop as application code first writes it, with the ORM the rest of lma-bot uses, in one
    unit of work as the runtime role: for each lead, ``session.get`` it, select its events, evaluate every
    active rule with the reference evaluator (the same ``_evaluate`` as the hand-tuned loop), set the lead's
    score, temperature and ``rule_points`` and ``session.add`` its history row (flushed by the next query, as
    autoflush does). Returns the seconds, and where they went."""
    started = time.perf_counter()
    spent = {"database": 0.0, "evaluate": 0.0}
    columns = [(attr.key, attr.columns[0].name) for attr in inspect(Lead).column_attrs]
    async with app.uow(org_id) as session:
        config = await engine.load_config(session, org_id)
        rules = [r for r in config.rules if r.is_active]
        in_order = sorted(rules, key=lambda r: (-r.priority, r.id))
        active = {str(r.id) for r in rules}
        now = _epoch((await session.execute(text("SELECT now()"))).scalar_one())
        ids = list(
            (
                await session.scalars(select(Lead.id).where(Lead.organization_id == org_id).order_by(Lead.id))
            ).all()
        )
        for lead_id in ids:
            t0 = time.perf_counter()
            lead = await session.get(Lead, (org_id, lead_id), options=[undefer(Lead.rule_points)])
            rows = await session.execute(
                select(LeadEvent.event_type, LeadEvent.occurred_at, LeadEvent.id).where(
                    LeadEvent.organization_id == org_id, LeadEvent.lead_id == lead_id
                )
            )
            events = [EventFact(str(kind), at, int(ident)) for kind, at, ident in rows]
            t1 = time.perf_counter()
            spent["database"] += t1 - t0
            if lead is None or lead.deleted_at is not None or lead.score_locked_at is not None:
                continue
            unloaded = inspect(lead).unloaded  # deferred columns (search_vector) the rules never read
            fields = {name: getattr(lead, key) for key, name in columns if key not in unloaded}
            old = _points(fields["rule_points"])
            new, deltas, reasons = _evaluate(config, in_order, active, fields, events, old, now)
            spent["evaluate"] += time.perf_counter() - t1
            if _same(new, old):
                continue
            delta = sum(deltas.values())
            previous = lead.score
            lead.score = previous + delta
            if delta:
                lead.lead_temperature = next_temperature(lead.lead_temperature, lead.score, config.thresholds)
            lead.rule_points = {
                k: [v[0], v[1], None if v[2] == "null" else float(v[2])] for k, v in new.items()
            }
            if deltas:
                session.add(
                    LeadScoreHistory(
                        organization_id=org_id,
                        lead_id=lead_id,
                        previous_score=previous,
                        new_score=lead.score,
                        score_change=delta,
                        reason=("rescore: " + ", ".join(reasons))[:500],
                        rule_id=int(next(iter(deltas))) if len(deltas) == 1 else None,
                        kind="rule",
                        rule_deltas=deltas,
                    )
                )
        t0 = time.perf_counter()
        await session.flush()
        spent["database"] += time.perf_counter() - t0
    return time.perf_counter() - started, spent


async def history_rows(app: Database, org_id: int) -> int:
    async with app.uow(org_id) as session:
        return int((await session.execute(text("SELECT count(*) FROM lead_score_history"))).scalar_one())


async def reset(owner_url: str, org_id: int) -> float:
    """Every lead back to how it was built (score 0, cold, no rule contributions, no history), as the owner,
    then ``VACUUM ANALYZE``: the naive loop starts from the state the rescore started from."""
    started = time.perf_counter()
    owner = create_async_engine(owner_url)
    async with owner.begin() as conn:
        await conn.execute(
            text("SELECT set_config('app.current_organization_id', :o, true)"), {"o": str(org_id)}
        )
        await conn.execute(
            text(
                "UPDATE leads SET score = 0, lead_temperature = 'cold', rule_points = '{}' WHERE organization_id = :o"
            ),
            {"o": org_id},
        )
        await conn.execute(text("DELETE FROM lead_score_history WHERE organization_id = :o"), {"o": org_id})
    async with owner.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE leads, lead_score_history"))
    await owner.dispose()
    return time.perf_counter() - started


async def state(
    app: Database, org_id: int
) -> tuple[dict[int, tuple[int, str, dict[str, list[Any]]]], int, int]:
    """Every lead's (score, temperature, rule contributions as [points, firings]), and the two invariants:
    leads whose score differs from their history's sum, and leads with a rule contribution that differs from
    the sum of that rule's ``rule_deltas``."""
    async with app.uow(org_id) as session:
        leads = {
            int(r[0]): (int(r[1]), str(r[2]), {k: v[:2] for k, v in _points(r[3]).items()})
            for r in await session.execute(text("SELECT id, score, lead_temperature, rule_points FROM leads"))
        }
        adds_up = (
            await session.execute(
                text(
                    "SELECT count(*) FROM leads l WHERE score <> coalesce((SELECT sum(score_change) "
                    "FROM lead_score_history h WHERE h.organization_id = l.organization_id AND h.lead_id = l.id), 0)"
                )
            )
        ).scalar_one()
        rules_add_up = (
            await session.execute(
                text(
                    "WITH now AS (SELECT l.id AS lead_id, e.key AS rule_id, (e.value ->> 0)::int AS points "
                    "FROM leads l CROSS JOIN LATERAL jsonb_each(l.rule_points) e), "
                    "hist AS (SELECT h.lead_id, d.key AS rule_id, sum(d.value::int) AS total "
                    "FROM lead_score_history h CROSS JOIN LATERAL jsonb_each_text(h.rule_deltas) d "
                    "WHERE h.kind = 'rule' GROUP BY 1, 2) "
                    "SELECT count(DISTINCT coalesce(now.lead_id, hist.lead_id)) "
                    "FROM now FULL JOIN hist USING (lead_id, rule_id) "
                    "WHERE coalesce(now.points, 0) <> coalesce(hist.total, 0)"
                )
            )
        ).scalar_one()
    return leads, int(adds_up), int(rules_add_up)


def run_cli(owner_url: str, redis_url: str, org_id: int) -> tuple[dict[str, Any], float]:
    env = {
        **os.environ,
        "DATABASE_URL": owner_url,
        "REDIS_URL": redis_url,
        "LMA_REDIS_PREFIX": "bench-rescore:",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lma-bot")), "rescore", "--org", str(org_id), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"lma-bot rescore failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout), wall


async def main(args: argparse.Namespace, argv: list[str]) -> int:
    server_url = server_url_from(args.server_url)
    redis_url = args.redis_url or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    n = 10_000 if args.quick else args.leads
    per_lead = 10
    bench = await create_database(server_url, prefix="lma_bench_rescore")
    try:
        await migrate(bench.owner_url, DEFAULT_APP_ROLE)
        app = Database.from_url(bench.app_url, pool_size=2, application_name="bench rescore")
        try:
            org_id, build_s = await build(bench.owner_url, app, n, per_lead)
            load_before = load_average()
            summary, ours_wall = run_cli(bench.owner_url, redis_url, org_id)
            second, second_wall = run_cli(bench.owner_url, redis_url, org_id)
            ours, ours_adds_up, ours_rules_add_up = await state(app, org_id)
            reset_s = await reset(bench.owner_url, org_id)
            naive_s, spent = await naive(app, org_id)
            theirs, naive_adds_up, naive_rules_add_up = await state(app, org_id)
            naive_history = await history_rows(app, org_id)
            await reset(bench.owner_url, org_id)
            orm_s, orm_spent = await naive_orm(app, org_id)
            load_after = load_average()
            orm, orm_adds_up, orm_rules_add_up = await state(app, org_id)
            orm_history = await history_rows(app, org_id)
            owner = create_async_engine(bench.owner_url)
            server = await server_info(owner)
            await owner.dispose()
        finally:
            await app.dispose()
    finally:
        if not args.keep:
            await drop_database(server_url, bench.db_name)
    mismatched = sum(
        1
        for lead, row in theirs.items()
        if ours.get(lead, (None,))[0] != row[0] or orm.get(lead, (None,))[0] != row[0]
    ) + abs(len(orm) - len(theirs))
    other = sum(1 for lead, row in theirs.items() if ours.get(lead) != row or orm.get(lead) != row)
    adds_up = ours_adds_up + naive_adds_up + orm_adds_up
    rules_add_up = ours_rules_add_up + naive_rules_add_up + orm_rules_add_up
    ours_s = float(summary["seconds"])
    ratio = orm_s / ours_wall
    tuned_ratio = naive_s / ours_wall
    verdict = (
        f"ours {ours_wall:.2f} s wall ({ours_s:.2f} s in the rescore) {'<=' if ours_wall <= 10 else '>'} 10 s; "
        f"{ratio:.1f}x the naive per-lead loop ({'>=' if ratio >= 20 else '<'} 20x), "
        f"{tuned_ratio:.1f}x the hand-tuned per-lead loop; "
        f"scores identical in all three for {len(theirs) - mismatched:,} of {len(theirs):,} leads "
        f"({other} leads whose temperature or rule contributions differ); "
        f"{adds_up} leads whose score differs from their history sum, "
        f"{rules_add_up} whose rule contributions differ from their history's rule deltas"
    )
    print(verdict)
    naive_db, naive_eval = spent["database"], spent["evaluate"]
    orm_db, orm_eval = orm_spent["database"], orm_spent["evaluate"]
    section = f"""## rescore: `lma-bot rescore` (set-based SQL) vs a naive per-lead Python loop

- Command: `{command_line("bench/rescore.py", argv)}`
- Date (UTC): {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}
- Machine: {machine_info(server)}
- Data: 1 organization, {n:,} leads, {len(FIELD_RULES) + len(EVENT_RULES)} rules ({len(FIELD_RULES)} on fields incl. regex, custom fields, tags; {len(EVENT_RULES)} on events with counts, 1-30 day windows, once_per_lead / once_per_event / at_most N, mixed with field conditions), {n * per_lead:,} events over 90 days (7 types). Built in {build_s:.1f} s (owner `INSERT ... SELECT`, then `VACUUM ANALYZE`). Before each loop every lead is put back in that state (score 0, cold, no rule contributions, no history; then `VACUUM ANALYZE`; {reset_s:.1f} s, not timed), so all three start from the same rows and all write every lead.
- Load average (1 min) before / after measuring: {load_before[0]:.2f} / {load_after[0]:.2f} (other sessions' tests and benchmarks share the 2 cores; only benchmarks take the bench lock)

| variant | seconds | leads/s | result |
|---|---:|---:|---|
| ours: `lma-bot rescore --org {org_id} --json` (subprocess, wall) | {ours_wall:.2f} | {n / ours_wall:,.0f} | {summary["changed"]:,} scores changed, {summary["history_rows"]:,} history rows, rescore itself {ours_s:.2f} s |
| ours again (nothing to change) | {second_wall:.2f} | {n / second_wall:,.0f} | {second["changed"]} changed, {second["history_rows"]} history rows |
| naive: per-lead loop with the ORM, writing the same rows | {orm_s:.2f} | {n / orm_s:,.0f} | {orm_history:,} history rows; {orm_db:.1f} s in the session's statements and flushes, {orm_eval:.1f} s in the Python evaluator |
| hand-tuned per-lead loop: raw asyncpg, prepared statements | {naive_s:.2f} | {n / naive_s:,.0f} | {naive_history:,} history rows; {naive_db:.1f} s in its statements (round trips included), {naive_eval:.1f} s in the Python evaluator |

**Verdict: {verdict}.** Targets: <= 10 s and >= 20x the naive loop, identical scores.

- **ours** runs as an operator would (`DATABASE_URL` = the owner's URL; the command connects as the runtime role `lma_app`, so row-level security applies), including process start-up (about 0.7 s of Python imports), the organization's scoring advisory lock, one statement per range of {PARALLEL_CHUNK:,} lead ids on {WORKERS} connections side by side (each range its own transaction): every lead's 20 rule contributions computed in one pass and compared with `leads.rule_points`, and for the leads that differ `leads.score`/temperature/`rule_points` updated and one history row written (`rule_deltas` per moved rule), then the `lead_score:{{id}}` writes to Redis as each range commits. The second run shows the cost when nothing changed (compute and compare only).
- **naive** (the per-lead loop as application code first writes it, the baseline the target is read against): one `database.uow` as `lma_app` with the ORM the rest of lma-bot uses; for each lead in id order `session.get(Lead, ...)`, a `select` of its events (tuples, not ORM objects), the reference evaluator for each active rule (the same `_evaluate` as the hand-tuned loop), the lead's `score`, `lead_temperature` and `rule_points` set and a `LeadScoreHistory` added, flushed by the next query (autoflush). No per-lead commit, no sleeps, no query it does not need.
- **hand-tuned per-lead loop** (the fastest per-lead loop we could write, shown so the ratio is not read against a slow baseline alone): one transaction as `lma_app`, on the session's asyncpg connection with its four statements prepared once (`conn.prepare`); for each lead in id order: `SELECT * FROM leads WHERE organization_id = $1 AND id = $2`, its events (`SELECT event_type, occurred_at, id FROM lead_events WHERE organization_id = $1 AND lead_id = $2`), `lma_bot.scoring.rules.evaluate` for each active rule (the reference the tests hold the SQL to), the same `rule_points` entries, deltas and reason text the set-based statement builds; if the contributions differ from the lead's `rule_points`, one `UPDATE leads SET score, lead_temperature, rule_points` and, when a rule's points moved, one `INSERT INTO lead_score_history` (the same columns and values; `rule_id` when exactly one rule moved). No per-lead commit, no sleeps, nothing read twice. It writes nothing to Redis (ours does).
- Checked after each: ours and both loops end with the same score, temperature and per-rule [points, firings] for every lead (the count above); in all three, every lead's score equals the sum of its history deltas and every rule contribution in `leads.rule_points` the sum of that rule's `rule_deltas` (the counts of leads breaking either are in the verdict; they must be 0).
- What this round changed (issue 6): (1) `leads.search_vector` is kept by a `BEFORE INSERT OR UPDATE OF first_name, last_name, company, email, search_vector` trigger instead of a stored generated column (migration 0016), so a score update no longer recomputes `to_tsvector` and a regular expression per lead; (2) event rules that fire at each trigger event on a condition of the lead alone (a count-1 condition on the trigger event always holds there: 7 of the 10 event rules here) are counted with plain per-type aggregates; only the 3 that need other events' counts in a window get the window pass and a per-event evaluation; (3) start-up imports only what `rescore` needs (alembic, aiohttp, the workflow and org/user services are imported where used: about 0.3 s less); (4) `lead_score:{{id}}` values are formatted without `json.dumps` (with (3), the command's own CPU went from about 2.9 s to 1.7 s; it shares the 2 cores with the server); (5) the loops now write what ours writes (before, the only loop read and evaluated, so the ratio compared a read-only loop with a full write), and the loop as application code writes it (the ORM) is the naive baseline, with the hand-tuned raw-asyncpg loop measured next to it.
- Where the time goes (one 10,000-lead range on its own, first rescore, measured while developing on a machine at load ~1.5, median of 4): reading the events and the window pass ~0.10 s; the per-type and per-rule aggregates ~0.14 s; field rules, contributions and the comparison with `rule_points` ~0.15 s; deltas and reasons ~0.15 s; the `leads` update with its join and `RETURNING` ~0.5-0.65 s (a bare update of the same rows ~0.3-0.45 s) and the history insert with its 4 foreign-key checks ~0.15 s. About 1.1-1.4 s of server CPU per 10,000 leads, 11-14 s for 100,000, on 2 cores, plus about 1.7 s of client CPU (start-up included) and Redis.
- Spread (noted by hand, not measured by this run): the same design took 8.5-10.0 s for ours when the machine was quiet and 12-14 s while other sessions' tests and benchmarks loaded it (2026-12-06, 04:45-05:06), with the hand-tuned loop at 84-113 s: the <= 10 s target holds on a quiet machine only.
- Against the hand-tuned loop, 20x is out of reach on this machine: that loop costs about 1 ms per lead, so 20x would mean the whole command in about 5 s. Writing 100,000 changed `leads` rows alone costs about 3.3 s of server CPU here (a bare `UPDATE leads SET score = score + 1` over 100,000 rows, measured: never HOT because `score` is in SEED's `idx_leads_org_status_score`, so all 16 indexes get an entry per row, 3 of them GIN: about 1 s of the 3.3 s is their pending-list merges), the 100,000 history rows with their foreign-key checks about another 1.5 s, and process start-up 0.7 s: with the rule evaluation itself that is more than 5 s of wall time on 2 shared cores. What is left: the reasons and deltas (string building per lead) could be simpler; the history table's `organization_id` foreign key is redundant with its `(organization_id, lead_id)` one (about 0.3 s per 100,000 rows); `idx_leads_custom_fields` with `jsonb_path_ops` would index fewer entries per lead (other queries' operators permitting).
"""
    if not args.no_write:
        write_results(SECTION, section, RESULTS)
    return 0 if mismatched == 0 and other == 0 and adds_up == 0 and rules_add_up == 0 else 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--server-url", help="PostgreSQL server URL (user may create databases and roles)")
    parser.add_argument("--redis-url", help="Redis URL (default $REDIS_URL or redis://127.0.0.1:6379/0)")
    parser.add_argument("--leads", type=int, default=100_000, help="leads (default 100,000; 10 events each)")
    parser.add_argument("--quick", action="store_true", help="10,000 leads, 100,000 events")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    parser.add_argument("--no-write", action="store_true", help=f"do not touch {RESULTS.name}")
    return parser.parse_args(argv[1:])


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(sys.argv), sys.argv)))
