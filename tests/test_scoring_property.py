"""Property: over random rules and event streams (shuffled, some delivered twice), incremental scoring keeps
``leads.score == Σ history deltas`` and each rule's contribution equal to its history, every score equals
the reference evaluator, and a rescore afterwards changes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from lma_bot.db import Database
from lma_bot.scoring import engine
from lma_bot.scoring.rescore import rescore_org
from lma_bot.scoring.rules import EventFact, evaluate
from tests.support import new_org
from tests.test_scoring import T0, _check_invariant, _lead, _rule

EVENTS = ("email_opened", "email_clicked", "meeting_booked")
field_conditions = st.one_of(
    st.builds(lambda v: {"field": "source", "op": "eq", "value": v}, st.sampled_from(["web", "ads"])),
    st.builds(lambda v: {"field": "tags", "op": "contains", "value": v}, st.sampled_from(["vip", "q4"])),
    st.builds(lambda v: {"field": "custom_fields.size", "op": "gte", "value": v}, st.integers(0, 100)),
    st.builds(
        lambda v: {"field": "job_title", "op": "matches", "value": v}, st.sampled_from(["^vp", "sales$"])
    ),
)
event_conditions = st.builds(
    lambda name, count, days: {"event": name, "count": count, **({"within_days": days} if days else {})},
    st.sampled_from(EVENTS),
    st.integers(1, 3),
    st.sampled_from([None, 1, 7]),
)
leaf = st.one_of(field_conditions, event_conditions)
criteria = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=4,
)


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(criteria)
    has_event = "event" in str(doc)
    policy = (
        draw(st.sampled_from(["once_per_lead", "once_per_event", "at_most"]))
        if has_event
        else "once_per_lead"
    )
    return {
        "criteria": doc,
        "points": draw(st.integers(-20, 30).filter(bool)),
        "repeat_policy": policy,
        "repeat_limit": draw(st.integers(1, 3)) if policy == "at_most" else None,
    }


leads = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["web", "ads", None]),
        "tags": st.lists(st.sampled_from(["vip", "q4", "x"]), unique=True, max_size=2),
        "custom_fields": st.one_of(st.just({}), st.builds(lambda n: {"size": n}, st.integers(0, 100))),
        "job_title": st.sampled_from(["VP Sales", "Head of Sales", None]),
    }
)
streams = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(EVENTS), st.integers(0, 20 * 24)),  # (lead, name, hour)
    max_size=14,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rule_docs=st.lists(rules(), min_size=1, max_size=4),
    lead_docs=st.lists(leads, min_size=1, max_size=3),
    stream=streams,
    data=st.data(),
)
async def test_history_always_adds_up_and_equals_the_reference(
    db: Database,
    rule_docs: list[dict[str, Any]],
    lead_docs: list[dict[str, Any]],
    stream: list[Any],
    data: Any,
) -> None:
    org = await new_org(db)
    try:
        for i, doc in enumerate(rule_docs):
            await _rule(db, org, name=f"r{i}", **doc)
        lead_ids = []
        for i, doc in enumerate(lead_docs):
            fields = {k: v for k, v in doc.items() if v is not None}
            lead_ids.append(await _lead(db, org, email=f"l{i}@acme.test", **fields))
        deliveries = [(i, *e) for i, e in enumerate(stream) if e[0] < len(lead_ids)]
        deliveries += (
            data.draw(st.lists(st.sampled_from(deliveries), max_size=3)) if deliveries else []
        )  # twice
        for key, who, name, hour in data.draw(st.permutations(deliveries)):
            async with db.uow(org) as session:
                await engine.record_event(
                    session,
                    org_id=org,
                    lead_id=lead_ids[who],
                    event_type=name,
                    dedupe_key=f"e{key}",
                    occurred_at=T0 + dt.timedelta(hours=hour),
                )
        scores = await _check_invariant(db, org)
        async with db.uow(org) as session:
            config = await engine.load_config(session, org)
            rows = {r["id"]: dict(r) for r in (await session.execute(text("SELECT * FROM leads"))).mappings()}
            events = [
                (int(r[0]), EventFact(str(r[1]), r[2], int(r[3])))
                for r in await session.execute(
                    text("SELECT lead_id, event_type, occurred_at, id FROM lead_events")
                )
            ]
        assert len(events) == len({d[0] for d in deliveries})  # each event stored once
        for lead_id in lead_ids:
            facts = [e for who, e in events if who == lead_id]
            expected = sum(evaluate(rule, rows[lead_id], facts).points for rule in config.rules)
            assert scores[lead_id] == expected
        async with db.uow(org) as session:
            summary = await rescore_org(session, org_id=org)
        assert (summary.changed, summary.history_rows) == (0, 0)
    finally:
        async with db.uow(org) as session:
            await session.execute(text("DELETE FROM organizations WHERE id = :o"), {"o": org})
