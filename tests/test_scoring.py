"""The scoring engine against real PostgreSQL as the runtime role: SQL equals the reference evaluator for
every operator, repeat policy and window; events score once; history adds up; temperature hysteresis; decay
floor; manual adjustments and the lock; rules stay inside their organization; rescore equals incremental;
Redis and the hot alert after the commit."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text

from lma_bot.db import Database
from lma_bot.errors import InvalidInput, NotFound, PermissionDenied
from lma_bot.leads.schemas import LeadCreate
from lma_bot.leads.service import create_lead
from lma_bot.models import Lead, User
from lma_bot.redis import RedisClient, RedisKeys
from lma_bot.scoring import engine, publish
from lma_bot.scoring.decay import apply_decay
from lma_bot.scoring.engine import ScoreChange
from lma_bot.scoring.rescore import rescore, rescore_org
from lma_bot.scoring.rules import EventFact, InvalidRule, evaluate
from lma_bot.scoring.service import (
    RuleInput,
    adjust_score,
    create_rule,
    get_rule,
    list_rules,
    lock_score,
    score_breakdown,
    set_rule_active,
    unlock_score,
)
from lma_bot.users.schemas import UserCreate
from lma_bot.users.service import add_user
from tests.support import new_org
from tests.test_scoring_rules import LEAD, T0

EVERY_OPERATOR = [
    ("source", "eq", "linkedin"),
    ("company", "eq", "x"),
    ("source", "neq", "twitter"),
    ("company", "neq", "x"),
    ("source", "in", ["Twitter", "LINKEDIN"]),
    ("source", "not_in", ["twitter"]),
    ("company", "not_in", ["x"]),
    ("job_title", "contains", "of sa"),
    ("job_title", "starts_with", "vp"),
    ("job_title", "starts_with", "of"),
    ("job_title", "matches", r"^(vp|head) of"),
    ("email", "matches", r"@(gmail|acme)\.com$"),
    ("email", "exists", True),
    ("company", "exists", True),
    ("company", "exists", False),
    ("tags", "contains", "VIP"),
    ("tags", "in", ["x", "q4"]),
    ("tags", "not_in", ["x", "q4"]),
    ("tags", "exists", True),
    ("do_not_contact", "eq", False),
    ("do_not_contact", "neq", False),
    ("custom_fields.employees", "gt", 200),
    ("custom_fields.employees", "gte", 250),
    ("custom_fields.employees", "lt", 250),
    ("custom_fields.employees", "lte", 250.0),
    ("custom_fields.ratio", "eq", 0.5),
    ("custom_fields.plan", "gt", 1),
    ("custom_fields.employees", "eq", 250),
    ("custom_fields.employees", "eq", "250"),
    ("custom_fields.plan", "eq", "pro"),
    ("custom_fields.trial", "eq", True),
    ("custom_fields.trial", "eq", 1),
    ("custom_fields.plan", "in", ["basic", "PRO"]),
    ("custom_fields.plan", "contains", "r"),
    ("custom_fields.plan", "starts_with", "p"),
    ("custom_fields.plan", "matches", "^pr"),
    ("custom_fields.employees", "contains", "2"),
    ("custom_fields.blank", "exists", True),
    ("custom_fields.none", "exists", True),
    ("custom_fields.plan", "exists", True),
    ("custom_fields.missing", "neq", "x"),
    ("custom_fields.missing", "not_in", ["x"]),
]


async def _user(db: Database, org: int, role: str = "manager") -> User:
    async with db.uow(org) as session:
        return await add_user(
            session, org_id=org, data=UserCreate(email=f"{role}@acme.test", name=role.title(), role=role)
        )


async def _rule(db: Database, org: int, criteria: Any, points: int = 10, **extra: Any) -> int:
    async with db.uow(org) as session:
        rule = await create_rule(
            session,
            org_id=org,
            data=RuleInput(name=extra.pop("name", "r"), criteria=criteria, points=points, **extra),
            actor=None,
        )
        return rule.id


async def _lead(db: Database, org: int, **fields: Any) -> int:
    async with db.uow(org) as session:
        lead = await create_lead(session, org_id=org, data=LeadCreate.model_validate(fields))
        return lead.id


async def _event(
    db: Database, org: int, lead: int, name: str, days: float, key: str | None = None
) -> list[ScoreChange]:
    async with db.uow(org) as session:
        _, changes = await engine.record_event(
            session,
            org_id=org,
            lead_id=lead,
            event_type=name,
            dedupe_key=key or f"{name}:{days}:{lead}",
            occurred_at=T0 + dt.timedelta(days=days),
        )
        return changes


async def _check_invariant(db: Database, org: int) -> dict[int, int]:
    """leads.score == Σ history deltas; each rule's contribution == Σ its history deltas. Returns scores."""
    async with db.uow(org) as session:
        rows = (
            await session.execute(
                text(
                    "SELECT l.id, l.score, coalesce((SELECT sum(score_change) FROM lead_score_history h "
                    "WHERE h.organization_id = l.organization_id AND h.lead_id = l.id), 0) FROM leads l"
                )
            )
        ).all()
        for lead_id, score, total in rows:
            assert score == total, f"lead {lead_id}: score {score}, history adds up to {total}"
        bad = (
            await session.execute(
                text(
                    "WITH now AS (SELECT l.id AS lead_id, e.key AS rule_id, (e.value ->> 0)::int AS points "
                    "FROM leads l CROSS JOIN LATERAL jsonb_each(l.rule_points) e), "
                    "hist AS (SELECT h.lead_id, d.key AS rule_id, sum(d.value::int) AS total "
                    "FROM lead_score_history h CROSS JOIN LATERAL jsonb_each_text(h.rule_deltas) d "
                    "WHERE h.kind = 'rule' GROUP BY 1, 2) "
                    "SELECT * FROM now FULL JOIN hist USING (lead_id, rule_id) "
                    "WHERE coalesce(now.points, 0) <> coalesce(hist.total, 0)"
                )
            )
        ).all()
        assert bad == [], f"rule contributions that differ from their history: {bad}"
        split = (
            await session.execute(
                text(
                    "SELECT id FROM lead_score_history h WHERE kind = 'rule' AND (score_change <> "
                    "(SELECT coalesce(sum(value::int), 0) FROM jsonb_each_text(h.rule_deltas)) OR rule_id IS "
                    "DISTINCT FROM (SELECT min(key::int) FROM jsonb_object_keys(h.rule_deltas) key "
                    "HAVING count(*) = 1))"
                )
            )
        ).all()
        assert split == [], "history rows whose rule deltas do not add up"
        return {int(r[0]): int(r[1]) for r in rows}


async def test_every_operator_in_sql_equals_the_reference(db: Database) -> None:
    org = await new_org(db)
    fields = {k: v for k, v in LEAD.items() if v is not None and k not in ("status", "do_not_contact")}
    lead_id = await _lead(db, org, **fields)
    other = await _lead(db, org, email="bob@example.org", tags=[], custom_fields={"plan": 3})
    rules = {}
    for i, (field, op, value) in enumerate(EVERY_OPERATOR):
        rules[
            await _rule(db, org, {"field": field, "op": op, "value": value}, points=1, name=f"{field} {op}")
        ] = i
    async with db.uow(org) as session:
        await engine.lead_changed(session, org_id=org, lead_id=lead_id)
        await engine.lead_changed(session, org_id=org, lead_id=other)
        configured = (await engine.load_config(session, org)).rules
        got = {
            (int(r[0]), int(r[1]))
            for r in (
                await session.execute(
                    text(
                        "SELECT l.id, e.key::int FROM leads l CROSS JOIN LATERAL jsonb_each(l.rule_points) e "
                        "WHERE (e.value ->> 0)::int = 1"
                    )
                )
            )
        }
        leads = {lead.id: lead for lead in (await session.execute(text("SELECT * FROM leads"))).mappings()}
    assert len(configured) == len(EVERY_OPERATOR)
    for rule in configured:
        for lid in (lead_id, other):
            expected = evaluate(rule, dict(leads[lid]), []).points == 1
            assert ((lid, rule.id) in got) is expected, f"{EVERY_OPERATOR[rules[rule.id]]} on lead {lid}"
    await _check_invariant(db, org)


async def test_repeat_policies_windows_and_dedupe(db: Database) -> None:
    org = await new_org(db)
    lead = await _lead(db, org, email="ann@acme.com", source="linkedin")
    specs = [
        ({"event": "email_opened"}, "once_per_lead", None),
        ({"event": "email_opened"}, "once_per_event", None),
        ({"event": "email_opened"}, "at_most", 2),
        ({"event": "email_opened", "count": 3, "within_days": 7}, "once_per_event", None),
        ({"all": [{"event": "email_clicked"}, {"not": {"event": "email_bounced"}}]}, "once_per_event", None),
        (
            {"any": [{"event": "meeting_booked"}, {"field": "source", "op": "eq", "value": "x"}]},
            "once_per_lead",
            None,
        ),
    ]
    ids = [
        await _rule(db, org, c, points=5 + i, repeat_policy=p, repeat_limit=n, name=f"r{i}")
        for i, (c, p, n) in enumerate(specs)
    ]
    stream = [
        ("email_opened", 0),
        ("email_clicked", 0.5),
        ("email_opened", 1),
        ("email_opened", 20),
        ("email_opened", 2),
        ("email_bounced", 3),
        ("email_clicked", 4),
        ("meeting_booked", 5),
    ]
    for i, (name, days) in enumerate(stream):
        await _event(db, org, lead, name, days, key=f"k{i}")
    # delivered twice: nothing changes
    assert await _event(db, org, lead, "email_opened", 0, key="k0") == []
    async with db.uow(org) as session:
        config = await engine.load_config(session, org)
        count = (await session.execute(text("SELECT count(*) FROM lead_events"))).scalar_one()
        row = dict((await session.execute(text("SELECT * FROM leads"))).mappings().one())
    assert count == len(stream)
    facts = [EventFact(n, T0 + dt.timedelta(days=d), i) for i, (n, d) in enumerate(stream)]
    expected = {r.id: evaluate(r, row, facts).points for r in config.rules}
    assert expected == {ids[0]: 5, ids[1]: 6 * 4, ids[2]: 14, ids[3]: 8, ids[4]: 9, ids[5]: 10}
    scores = await _check_invariant(db, org)
    assert scores[lead] == sum(expected.values())
    async with db.uow(org) as session:
        breakdown = await score_breakdown(session, org_id=org, lead_id=lead)
        history = (
            await session.execute(
                text(
                    "SELECT rule_id, event_id, reason, kind, rule_deltas FROM lead_score_history ORDER BY id"
                )
            )
        ).all()
    assert {line.rule_id: line.points for line in breakdown.rules} == expected
    assert {line.rule_id: line.firings for line in breakdown.rules}[ids[1]] == 4
    assert all(h.kind == "rule" and h.event_id is not None for h in history)
    assert all({int(k) for k in h.rule_deltas} <= set(ids) for h in history)
    assert all(h.rule_id in ids for h in history if len(h.rule_deltas) == 1)
    assert history[0].reason == 'email_opened: rule "r0" matched, rule "r1" matched, rule "r2" matched'
    assert breakdown.series[-1][1] == breakdown.score


async def test_lead_fields_and_status_changes_rescore_the_lead(db: Database) -> None:
    org = await new_org(db)
    vp = await _rule(db, org, {"field": "job_title", "op": "contains", "value": "vp"}, points=15)
    qualified = await _rule(db, org, {"field": "status", "op": "eq", "value": "qualified"}, points=20)
    lead = await _lead(db, org, email="ann@acme.com", job_title="VP Sales")
    from lma_bot.leads.service import change_status

    async with db.uow(org) as session:
        await change_status(session, org_id=org, lead_id=lead, status="qualified", actor_id=None)
        await change_status(session, org_id=org, lead_id=lead, status="unqualified", actor_id=None)
    async with db.uow(org) as session:
        reasons = list(
            (
                await session.execute(text("SELECT reason, score_change FROM lead_score_history ORDER BY id"))
            ).tuples()
        )
    assert reasons == [
        ('lead changed: rule "r" matched', 15),
        ('status_changed: rule "r" matched', 20),
        ('status_changed: rule "r" no longer applies', -20),
    ]
    assert (await _check_invariant(db, org))[lead] == 15
    assert vp != qualified


async def test_temperature_hysteresis_and_one_hot_alert_per_crossing(db: Database) -> None:
    org = await new_org(db)
    async with db.uow(org) as session:
        await session.execute(
            text("UPDATE organizations SET settings = :s"),
            {"s": json.dumps({"scoring": {"warm_threshold": 20, "hot_threshold": 50, "hysteresis": 5}})},
        )
    manager = await _user(db, org)
    lead = await _lead(db, org, email="ann@acme.com")
    seen = []
    for move in (+30, +20, -1, -4, -1, +6, -40, +49):
        async with db.uow(org) as session:
            change = await adjust_score(
                session, org_id=org, lead_id=lead, actor=manager, delta=move, reason="test"
            )
            assert change is not None
            seen.append((change.score, change.temperature, change.became_hot))
    assert seen == [
        (30, "warm", False),
        (50, "hot", True),
        (49, "hot", False),  # within the hysteresis band: stays hot, no alert
        (45, "hot", False),
        (44, "warm", False),
        (50, "hot", True),  # a new crossing
        (10, "cold", False),
        (59, "hot", True),
    ]
    await _check_invariant(db, org)


async def test_decay_never_below_the_floor_and_only_once_per_period(db: Database) -> None:
    org = await new_org(db)
    async with db.uow(org) as session:
        await session.execute(
            text("UPDATE organizations SET settings = :s"),
            {"s": json.dumps({"scoring": {"decay_points": 10, "decay_every_days": 7, "decay_floor": 5}})},
        )
    manager = await _user(db, org)
    stale = await _lead(db, org, email="stale@acme.com")
    fresh = await _lead(db, org, email="fresh@acme.com")
    low = await _lead(db, org, email="low@acme.com")
    for lead, points in ((stale, 40), (fresh, 40), (low, 3)):
        async with db.uow(org) as session:
            await adjust_score(session, org_id=org, lead_id=lead, actor=manager, delta=points, reason="seed")
    now = dt.datetime.now(dt.UTC)
    async with db.uow(org) as session:
        await session.execute(
            text("UPDATE leads SET last_engagement_date = :at WHERE id = :id"),
            {"at": now + dt.timedelta(days=10), "id": fresh},
        )
    async with db.uow(org) as session:
        changes = await apply_decay(session, org_id=org, now=now + dt.timedelta(days=15))
    assert {(c.lead_id, c.previous, c.score) for c in changes} == {(stale, 40, 20)}  # two periods
    async with db.uow(org) as session:
        assert await apply_decay(session, org_id=org, now=now + dt.timedelta(days=16)) == []
        changes = await apply_decay(session, org_id=org, now=now + dt.timedelta(days=60))
    assert {(c.lead_id, c.score) for c in changes} == {(stale, 5), (fresh, 5)}  # the floor
    async with db.uow(org) as session:
        decay_rows = list(
            (
                await session.execute(
                    text("SELECT reason, kind FROM lead_score_history WHERE kind = 'decay'")
                )
            ).tuples()
        )
    assert decay_rows
    assert all(r == ("decay", "decay") for r in decay_rows)
    scores = await _check_invariant(db, org)
    assert scores[low] == 3


async def test_manual_adjustments_need_a_manager_and_a_reason_and_the_lock_holds(db: Database) -> None:
    org = await new_org(db)
    manager = await _user(db, org)
    rep = await _user(db, org, role="rep")
    await _rule(db, org, {"event": "email_opened"}, points=10, repeat_policy="once_per_event")
    lead = await _lead(db, org, email="ann@acme.com")
    async with db.uow(org) as session:
        with pytest.raises(PermissionDenied):
            await adjust_score(session, org_id=org, lead_id=lead, actor=rep, delta=5, reason="because")
        with pytest.raises(InvalidInput, match="needs a reason"):
            await adjust_score(session, org_id=org, lead_id=lead, actor=manager, delta=5, reason="  ")
    async with db.uow(org) as session:
        change = await adjust_score(
            session, org_id=org, lead_id=lead, actor=manager, set_to=70, reason="exec sponsor", lock=True
        )
        assert change is not None
        assert change.score == 70
    assert await _event(db, org, lead, "email_opened", 1) == []  # locked: rules leave it alone
    async with db.uow(org) as session:
        history = list(
            (await session.execute(text("SELECT kind, reason, changed_by FROM lead_score_history"))).tuples()
        )
        assert history == [("manual", "manual: exec sponsor", manager.id)]
        caught_up = await unlock_score(session, org_id=org, lead_id=lead, actor=manager)
    assert [(c.previous, c.score) for c in caught_up] == [(70, 80)]
    async with db.uow(org) as session:
        await lock_score(session, org_id=org, lead_id=lead, actor=manager)
        breakdown = await score_breakdown(session, org_id=org, lead_id=lead)
    assert breakdown.locked_at is not None
    assert breakdown.manual_points == 70
    assert (await _check_invariant(db, org))[lead] == 80


async def test_rules_stay_inside_their_organization(db: Database) -> None:
    org_a, org_b = await new_org(db), await new_org(db)
    rule_a = await _rule(db, org_a, {"field": "source", "op": "eq", "value": "web"}, points=7)
    lead_b = await _lead(db, org_b, email="b@b.test", source="web")
    async with db.uow(org_b) as session:
        assert await list_rules(session, org_id=org_b) == []
        with pytest.raises(NotFound):
            await get_rule(session, org_id=org_b, rule_id=rule_a)
        assert (await engine.load_config(session, org_b)).rules == []
        assert (await rescore_org(session, org_id=org_b)).changed == 0
    assert (await _check_invariant(db, org_b))[lead_b] == 0
    lead_a = await _lead(db, org_a, email="a@a.test", source="web")
    assert (await _check_invariant(db, org_a))[lead_a] == 7


async def test_invalid_rule_is_refused_by_the_service(db: Database) -> None:
    org = await new_org(db)
    async with db.uow(org) as session:
        with pytest.raises(InvalidRule, match=r'criteria\.all\[1\]\.op: unknown operator "eqq"'):
            await create_rule(
                session,
                org_id=org,
                data=RuleInput(
                    name="bad",
                    criteria={
                        "all": [{"event": "email_opened"}, {"field": "source", "op": "eqq", "value": "x"}]
                    },
                    points=5,
                ),
                actor=None,
            )


async def test_rescore_equals_incremental_and_publishes(
    db: Database, redis: tuple[RedisClient, RedisKeys]
) -> None:
    client, keys = redis
    org = await new_org(db)
    async with db.uow(org) as session:
        await session.execute(
            text("UPDATE organizations SET settings = :s"),
            {"s": json.dumps({"scoring": {"hot_threshold": 30}})},
        )
    opened = await _rule(db, org, {"event": "email_opened"}, points=10, repeat_policy="once_per_event")
    leads = [await _lead(db, org, email=f"l{i}@acme.com", source="web" if i % 2 else "ads") for i in range(6)]
    for i, lead in enumerate(leads):
        for j in range(i):
            await _event(db, org, lead, "email_opened", j)
    before = await _check_invariant(db, org)
    async with db.uow(org) as session:
        assert (
            await rescore_org(session, org_id=org)
        ).history_rows == 0  # incremental already equals rescore
    alerts: list[ScoreChange] = []

    async def on_hot(change: ScoreChange) -> None:
        alerts.append(change)

    publisher = publish.ScorePublisher(client, keys, on_hot=on_hot)
    await client.set(keys.lead(leads[5]), "cached card")
    # a new rule, an edited one: rescore brings every lead where incremental scoring would have
    await _rule(db, org, {"field": "source", "op": "eq", "value": "web"}, points=5)
    async with db.uow(org) as session:
        await set_rule_active(session, org_id=org, rule_id=opened, active=False, actor=None)
    summary = await rescore(db, org, publisher=publisher, progress=lambda done, total: None)
    after = await _check_invariant(db, org)
    assert after == {lead: 5 if i % 2 else 0 for i, lead in enumerate(leads)}
    assert summary.changed == sum(1 for lead in leads if before[lead] != after[lead])
    stored = await publish.read_score(client, keys, leads[5])
    assert stored is not None
    assert stored["score"] == 5
    assert stored["organization_id"] == org
    assert await client.get(keys.lead(leads[5])) is None
    assert alerts == []  # 50 -> 5: no crossing into hot
    async with db.uow(org) as session:
        await set_rule_active(session, org_id=org, rule_id=opened, active=True, actor=None)
    await rescore(db, org, publisher=publisher)
    assert sorted(a.lead_id for a in alerts) == [leads[3], leads[4], leads[5]]  # 30, 45, 55: hot again


async def test_after_commit_publishing_and_savepoint_rollback(
    db: Database, redis: tuple[RedisClient, RedisKeys]
) -> None:
    client, keys = redis
    org = await new_org(db)
    await _rule(db, org, {"event": "email_opened"}, points=10, repeat_policy="once_per_event")
    lead = await _lead(db, org, email="ann@acme.com")
    publisher = publish.ScorePublisher(client, keys)
    publish.attach(db, publisher)
    try:
        async with db.uow(org) as session:
            await engine.record_event(
                session, org_id=org, lead_id=lead, event_type="email_opened", dedupe_key="a"
            )
            savepoint = await session.begin_nested()
            await engine.record_event(
                session, org_id=org, lead_id=lead, event_type="email_opened", dedupe_key="b"
            )
            await savepoint.rollback()
            assert len(session.info[engine.SCORE_OUTBOX_KEY]) == 1
        await publisher.drain()
        stored = await publish.read_score(client, keys, lead)
        assert stored is not None
        assert stored["score"] == 10
    finally:
        publish.attach(db, None)
    async with db.uow(org) as session:
        assert (await session.get(Lead, (org, lead))) is not None
    assert (await _check_invariant(db, org))[lead] == 10


async def test_rescore_waits_for_running_scorers_and_scorers_never_wait_for_a_rescore(db: Database) -> None:
    """The organization's scoring lock: a rescore starts after the scorers already running have committed
    (and so sees their events); a scorer that starts during a rescore does not wait for it, and the rescore
    leaves its lead alone. Either way the score equals the rules' and adds up to the history."""
    org = await new_org(db)
    await _rule(db, org, {"event": "email_opened"}, points=10, repeat_policy="once_per_event")
    lead = await _lead(db, org, email="ann@acme.com")
    async with db.uow(org) as scorer:
        await engine.record_event(
            session=scorer, org_id=org, lead_id=lead, event_type="email_opened", dedupe_key="a"
        )
        pending = asyncio.ensure_future(rescore(db, org, workers=1))
        await asyncio.sleep(0.3)
        assert not pending.done()  # waiting for the scorer's shared hold of the lock
    summary = await pending
    assert (summary.changed, summary.history_rows) == (0, 0)  # saw the scorer's committed event
    async with db.uow(org) as rescorer:
        await engine.take_scoring_lock(rescorer, org)  # a rescore in progress
        scored = await asyncio.wait_for(_event(db, org, lead, "email_opened", 1, key="b"), timeout=5)
        assert [c.score for c in scored] == [20]
        assert (await rescore_org(rescorer, org_id=org)).changed == 0
    assert (await _check_invariant(db, org))[lead] == 20


# -- the configuration a transaction loads once ----------------------------------------------------------


async def _score_in(session: Any, org: int, lead: int, name: str, key: str) -> int:
    await engine.record_event(
        session, org_id=org, lead_id=lead, event_type=name, dedupe_key=key, occurred_at=T0
    )
    return int(
        (await session.execute(text("SELECT score FROM leads WHERE id = :l"), {"l": lead})).scalar_one()
    )


async def test_a_batch_of_events_in_one_transaction_loads_the_rules_once(db: Database) -> None:
    org = await new_org(db)
    await _rule(db, org, {"event": "email_opened"}, 2, repeat_policy="once_per_event")
    lead = await _lead(db, org, email="a@acme.test")
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.uow(org) as session:
            for i in range(10):
                async with session.begin_nested():  # as webhook processing does, one savepoint per event
                    score = await _score_in(session, org, lead, "email_opened", f"open-{i}")
    finally:
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert score == 20
    assert sum("FROM lead_scoring_rules" in s for s in statements) == 2  # active rules and names, once
    async with db.uow(org) as session:  # the next transaction loads them again
        statements.clear()
        sa_event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
        try:
            assert await _score_in(session, org, lead, "email_opened", "open-10") == 22
        finally:
            sa_event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert sum("FROM lead_scoring_rules" in s for s in statements) == 2
    await _check_invariant(db, org)


async def test_a_rule_written_in_the_transaction_is_used_by_its_next_scoring(db: Database) -> None:
    org = await new_org(db)
    await _rule(db, org, {"event": "email_opened"}, 2, repeat_policy="once_per_event")
    lead = await _lead(db, org, email="a@acme.test")
    async with db.uow(org) as session:
        assert await _score_in(session, org, lead, "email_opened", "o1") == 2
        await create_rule(
            session,
            org_id=org,
            data=RuleInput(name="clicks", criteria={"event": "email_clicked"}, points=5),
            actor=None,
        )
        assert await _score_in(session, org, lead, "email_clicked", "c1") == 7
        async with session.begin_nested() as savepoint:  # a rule written, then rolled back
            await create_rule(
                session,
                org_id=org,
                data=RuleInput(name="opens x100", criteria={"event": "email_opened"}, points=100),
                actor=None,
            )
            assert await _score_in(session, org, lead, "email_opened", "o2") == 109
            await savepoint.rollback()
        assert await _score_in(session, org, lead, "email_opened", "o3") == 9  # not the rolled-back rule
    await _check_invariant(db, org)
