"""Rules compiled to SQL: every active rule's contribution to a set of leads (or a range of the
organization's leads), computed, compared with ``leads.rule_points`` and applied (``leads.score``,
temperature, ``rule_points``, one history row per changed lead) in one statement.

Incremental scoring (one lead, at an event or a change) and ``lma-bot rescore`` (every lead) run the *same*
statement with a different lead filter, so they cannot disagree. Semantics are those of
:func:`lma_bot.scoring.rules.evaluate` (the tests compare the two on random rules and event streams).

Only validated rules are compiled: field names come from the allowlist, numbers are validated ints (inlined),
and every user-supplied string travels as a bind parameter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from lma_bot.scoring.rules import (
    NUMBER_OPERATORS,
    All,
    AnyOf,
    Event,
    Field,
    Node,
    Not,
    Rule,
    events_of,
)
from lma_bot.scoring.temperature import Thresholds, temperature_sql


@dataclass
class _Binds:
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"


def _number(binds: _Binds, value: int | float) -> str:
    text = repr(value) if isinstance(value, float) else str(value)
    return f"CAST({binds(Decimal(text))} AS numeric)"


def _custom_scalar_eq(binds: _Binds, key: str, value: Any) -> str:
    k = binds(key)
    j = f"(l.custom_fields -> {k})"
    if isinstance(value, bool):
        literal = "true" if value else "false"  # validated bool: a constant, not user text
        return f"coalesce({j} = CAST('{literal}' AS jsonb), false)"
    if isinstance(value, str):
        return f"coalesce(jsonb_typeof({j}) = 'string' AND lower(l.custom_fields ->> {k}) = lower({binds(value)}), false)"
    return (
        f"(CASE WHEN jsonb_typeof({j}) = 'number' THEN (l.custom_fields ->> {k})::numeric = "
        f"{_number(binds, value)} ELSE false END)"
    )


def field_sql(cond: Field, binds: _Binds) -> str:
    """A boolean SQL expression (never NULL) on the lead row ``l``."""
    op, value, kind = cond.op, cond.value, cond.kind
    if op == "neq":
        return f"(NOT {field_sql(Field(cond.field, cond.key, 'eq', value), binds)})"
    if op == "not_in":
        return f"(NOT {field_sql(Field(cond.field, cond.key, 'in', value), binds)})"
    if kind == "tags":
        if op == "exists":
            return "(cardinality(l.tags) > 0)" if value else "(cardinality(l.tags) = 0)"
        if op == "contains":
            return f"coalesce(lower({binds(value)}) = ANY(l.tags), false)"
        values = ", ".join(f"lower({binds(v)})" for v in value)
        return f"coalesce(l.tags && CAST(ARRAY[{values}] AS varchar[]), false)"
    if kind == "bool":
        if op == "exists":
            return "true" if value else "false"
        return f"(l.{cond.field} = {binds(value)})"
    if kind == "text":
        col = f"l.{cond.field}"
        if op == "exists":
            return f"(coalesce({col}, '') <> '')" if value else f"(coalesce({col}, '') = '')"
        if op == "eq":
            return f"coalesce(lower({col}) = lower({binds(value)}), false)"
        if op == "in":
            values = ", ".join(f"lower({binds(v)})" for v in value)
            return f"coalesce(lower({col}) = ANY(ARRAY[{values}]), false)"
        return _text_op(op, col, value, binds)
    # custom_fields.<key>
    assert cond.key is not None
    if op == "exists":
        k = binds(cond.key)
        present = (
            f"coalesce(jsonb_typeof(l.custom_fields -> {k}) <> 'null' "
            f"AND (l.custom_fields -> {binds(cond.key)}) <> CAST('\"\"' AS jsonb), false)"
        )
        return present if value else f"(NOT {present})"
    if op == "eq":
        return _custom_scalar_eq(binds, cond.key, value)
    if op == "in":
        return "(" + " OR ".join(_custom_scalar_eq(binds, cond.key, v) for v in value) + ")"
    k = binds(cond.key)
    j = f"(l.custom_fields -> {k})"
    if op in NUMBER_OPERATORS:
        sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        k2 = binds(cond.key)
        return (
            f"(CASE WHEN jsonb_typeof({j}) = 'number' THEN (l.custom_fields ->> {k2})::numeric {sign} "
            f"{_number(binds, value)} ELSE false END)"
        )
    text = f"(l.custom_fields ->> {binds(cond.key)})"
    return f"(CASE WHEN jsonb_typeof({j}) = 'string' THEN {_text_op(op, text, value, binds)} ELSE false END)"


def _text_op(op: str, col: str, value: str, binds: _Binds) -> str:
    if op == "contains":
        return f"coalesce(strpos(lower({col}), lower({binds(value)})) > 0, false)"
    if op == "starts_with":
        return f"coalesce(starts_with(lower({col}), lower({binds(value)})), false)"
    if op == "matches":
        return f"coalesce({col} ~* {binds(value)}, false)"
    raise AssertionError(op)


def node_sql(node: Node, binds: _Binds, counts: dict[Event, str]) -> str:
    if isinstance(node, Field):
        return field_sql(node, binds)
    if isinstance(node, Event):
        return f"({counts[node]} >= {int(node.count)})"
    if isinstance(node, Not):
        return f"(NOT {node_sql(node.item, binds, counts)})"
    if isinstance(node, All):
        if not node.items:
            return "true"
        return "(" + " AND ".join(node_sql(i, binds, counts) for i in node.items) + ")"
    assert isinstance(node, AnyOf)
    return "(" + " OR ".join(node_sql(i, binds, counts) for i in node.items) + ")"


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: dict[str, Any]


@dataclass(frozen=True)
class _RuleExpr:
    rule: Rule
    points: str  # SQL int: what the rule gives the lead now
    firings: str  # SQL int: how many times it matched (before the repeat policy caps the points)
    fired_at: str  # SQL text (a JSON number): last firing, epoch seconds (kept from before for field rules)


#: one entry of ``leads.rule_points``: ``{"<rule id>": [points, firings, last fired (epoch seconds)]}``
NOW_EPOCH = "(SELECT CAST(extract(epoch FROM now()) AS text))"  # evaluated once per statement
_MAX_PAIRS = 45  # jsonb_build_object / concat_ws take at most 100 arguments


def at_event(node: Node, trigger: str) -> Node | bool:
    """``node`` as it stands at an event of type ``trigger``, simplified: a condition on ``trigger`` with a
    count of 1 holds there whatever its window (the event counts itself). ``True``/``False`` when nothing
    else is left to decide."""
    if isinstance(node, Event):
        return True if node.event == trigger and node.count <= 1 else node
    if isinstance(node, Field):
        return node
    if isinstance(node, Not):
        inner = at_event(node.item, trigger)
        return (not inner) if isinstance(inner, bool) else Not(inner)
    conjunction = isinstance(node, All)
    items: list[Node] = []
    for item in node.items:
        result = at_event(item, trigger)
        if isinstance(result, bool):
            if result is not conjunction:
                return result  # a false part of an "all", a true part of an "any"
            continue
        items.append(result)
    if not items:
        return conjunction  # all of nothing holds, any of nothing does not
    if len(items) == 1:
        return items[0]
    return All(tuple(items)) if conjunction else AnyOf(tuple(items))


def per_trigger(rule: Rule) -> dict[str, Node | bool] | None:
    """For a rule that fires at an event of type T exactly when a condition on the lead's fields holds
    (whatever the other events), that condition per trigger T; ``None`` when some trigger needs the counts
    of other events (windows, counts above 1, other event types). Such a rule's firings are the number of
    its trigger events whose condition holds: no window pass over the events is needed."""
    conditions: dict[str, Node | bool] = {}
    for name in rule.event_names:
        residual = at_event(rule.criteria, name)
        if not isinstance(residual, bool) and events_of(residual):
            return None
        conditions[name] = residual
    return conditions


def _targets(
    rules: Sequence[Rule], *, binds: _Binds, leads_filter: str
) -> tuple[list[str], str, list[_RuleExpr]]:
    """The CTEs, the FROM clause over ``leads l`` (scorable leads of ``:org`` matching ``leads_filter``) and,
    per active rule, its points / firings / last-fired expressions over that FROM clause.

    Event rules come in two kinds. Most fire at each trigger event on a condition of the lead alone
    (:func:`per_trigger`): their firings are counts of the lead's events per type, and the last firing the
    latest of them, plain aggregates. The others are evaluated at each trigger event over window counts of
    the lead's events (one window per distinct length, one pass over the lead's events)."""
    active = [r for r in rules if r.is_active]
    event_rules = [r for r in active if r.is_event_rule]
    field_rules = [r for r in active if not r.is_event_rule]
    simple = {r.id: c for r in event_rules if (c := per_trigger(r)) is not None}
    windowed = [r for r in event_rules if r.id not in simple]
    scorable = "l.deleted_at IS NULL AND l.score_locked_at IS NULL"
    ctes: list[str] = []
    exprs: list[_RuleExpr] = []
    lateral: list[str] = []
    if event_rules:
        windows: dict[int | None, str] = {}
        counts: dict[Event, str] = {}
        columns: list[str] = []
        for rule in windowed:
            for cond in events_of(rule.criteria):
                if cond in counts:
                    continue
                if cond.within_days not in windows:
                    windows[cond.within_days] = f"w{len(windows)}"
                name = f"c{len(counts)}"
                counts[cond] = f"ev.{name}"
                columns.append(
                    f"count(*) FILTER (WHERE e.event_type = {binds(cond.event)}) OVER {windows[cond.within_days]} AS {name}"
                )
        window_defs = []
        for days, name in windows.items():
            frame = (
                "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
                if days is None
                else f"RANGE BETWEEN INTERVAL '{int(days) * 24} hours' PRECEDING AND CURRENT ROW"
            )
            window_defs.append(f"{name} AS (PARTITION BY e.lead_id ORDER BY e.occurred_at {frame})")
        names = sorted({n for r in event_rules for n in r.event_names})
        # the lead filter on the events themselves (a lead's window counts do not depend on the lead row;
        # deleted and locked leads drop out in ``calc``)
        events_filter = leads_filter.replace("l.id", "e.lead_id")
        name_list = ", ".join(binds(n) for n in names)
        ctes.append(
            "ev AS (SELECT "
            + ", ".join(["e.lead_id", "e.event_type", "e.occurred_at", *columns])
            + " FROM lead_events e"
            + f" WHERE e.organization_id = :org AND e.event_type IN ({name_list}){events_filter}"
            + (" WINDOW " + ", ".join(window_defs) if window_defs else "")
            + ")"
        )
        # per event type the simple rules trigger on: how many events, and the latest
        types = sorted({n for r in event_rules if r.id in simple for n in r.event_names})
        type_column = {t: i for i, t in enumerate(types)}
        aggregates = []
        for t, i in type_column.items():
            bound = binds(t)
            aggregates.append(f"count(*) FILTER (WHERE x.event_type = {bound}) AS n{i}")
            aggregates.append(f"max(x.occurred_at) FILTER (WHERE x.event_type = {bound}) AS m{i}")
        matches = []
        for i, rule in enumerate(windowed):
            triggers = ", ".join(binds(n) for n in rule.event_names)
            matches.append(
                f"(ev.event_type IN ({triggers}) AND {node_sql(rule.criteria, binds, counts)}) AS b{i}"
            )
            aggregates.append(f"count(*) FILTER (WHERE x.b{i}) AS f{i}")
            aggregates.append(f"max(x.occurred_at) FILTER (WHERE x.b{i}) AS t{i}")
        # the lead's fields per event only when a windowed rule looks at them
        on_fields = any(_on_fields(r.criteria) for r in windowed)
        source = (
            " FROM ev JOIN leads l ON l.organization_id = :org AND l.id = ev.lead_id"
            f" WHERE {scorable}{leads_filter}"
            if on_fields
            else " FROM ev"
        )
        # each rule's condition evaluated once per event (OFFSET 0 keeps the subquery from being flattened
        # into the aggregates, which would evaluate it once for the count and once for the max)
        ctes.append(
            "fire AS (SELECT x.lead_id, "
            + ", ".join(aggregates)
            + " FROM (SELECT "
            + ", ".join(["ev.lead_id", "ev.event_type", "ev.occurred_at", *matches])
            + source
            + " OFFSET 0) x GROUP BY x.lead_id)"
        )
        windowed_index = {r.id: i for i, r in enumerate(windowed)}
        for rule in event_rules:
            if rule.id in simple:
                firings_parts: list[str] = []
                latest: list[str] = []
                for name, condition in simple[rule.id].items():
                    column = type_column[name]
                    if condition is False:
                        continue
                    if condition is True:
                        firings_parts.append(f"coalesce(f.n{column}, 0)")
                        latest.append(f"f.m{column}")
                        continue
                    flag = f"s{len(lateral)}"
                    lateral.append(f"{node_sql(condition, binds, {})} AS {flag}")
                    firings_parts.append(f"(CASE WHEN m.{flag} THEN coalesce(f.n{column}, 0) ELSE 0 END)")
                    latest.append(f"(CASE WHEN m.{flag} THEN f.m{column} END)")
                firings = "(" + " + ".join(firings_parts) + ")" if firings_parts else "0"
                last = (
                    "CAST(NULL AS timestamptz)"
                    if not latest
                    else latest[0]
                    if len(latest) == 1
                    else f"GREATEST({', '.join(latest)})"
                )
            else:
                i = windowed_index[rule.id]
                firings = f"coalesce(f.f{i}, 0)"
                last = f"f.t{i}"
            if rule.repeat_policy == "once_per_lead":
                capped = f"LEAST({firings}, 1)"
            elif rule.repeat_policy == "at_most":
                capped = f"LEAST({firings}, {int(rule.repeat_limit or 0)})"
            else:
                capped = firings
            exprs.append(
                _RuleExpr(
                    rule,
                    f"({int(rule.points)} * {capped})",
                    firings,
                    f"coalesce(CAST(extract(epoch FROM {last}) AS text), 'null')",
                )
            )
    for i, rule in enumerate(field_rules):
        lateral.append(f"{node_sql(rule.criteria, binds, {})} AS m{i}")
        exprs.append(
            _RuleExpr(
                rule,
                f"(CASE WHEN m.m{i} THEN {int(rule.points)} ELSE 0 END)",
                f"(CASE WHEN m.m{i} THEN 1 ELSE 0 END)",
                f"coalesce(CAST(nullif(l.rule_points -> '{int(rule.id)}' -> 2, 'null') AS text), {NOW_EPOCH})",
            )
        )
    joins = ""
    if event_rules:
        joins += " LEFT JOIN fire f ON f.lead_id = l.id"
    if lateral:
        joins += " CROSS JOIN LATERAL (SELECT " + ", ".join(lateral) + ") m"
    where = f"l.organization_id = :org AND {scorable}{leads_filter}"
    return ctes, f"FROM leads l{joins} WHERE {where}", exprs


def _on_fields(node: Node) -> bool:
    """Whether ``node`` has a condition on the lead's fields."""
    if isinstance(node, Field):
        return True
    if isinstance(node, Event):
        return False
    if isinstance(node, Not):
        return _on_fields(node.item)
    return any(_on_fields(item) for item in node.items)


def _chunks(items: list[str], size: int = _MAX_PAIRS) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _object(pairs: list[tuple[str, str]]) -> str:
    """A jsonb object of the pairs whose value (SQL text holding JSON) is not NULL. Built as text and cast
    once: about twice as fast as ``jsonb_strip_nulls(jsonb_build_object(...))``. Keys are rule ids."""
    items = [f"'\"{int(k)}\":' || {v}" for k, v in pairs]
    return f"CAST('{{' || coalesce({_joined(items, ',')}, '') || '}}' AS jsonb)"


def _joined(items: list[str], sep: str = ", ") -> str:
    """``concat_ws(sep, ...)`` of the non-NULL items, NULL when there are none."""
    if not items:
        return "CAST(NULL AS text)"
    parts = [f"nullif(concat_ws('{sep}', {', '.join(chunk)}), '')" for chunk in _chunks(items)]
    if len(parts) == 1:
        return parts[0]
    return f"nullif(concat_ws('{sep}', {', '.join(parts)}), '')"


def apply_sql(
    rules: Sequence[Rule],
    thresholds: Thresholds,
    *,
    scope: Literal["ids", "range"],
    reason_prefix: str,
    names: dict[int, str] | None = None,
) -> Compiled:
    """One statement: every scorable lead's rule contributions computed in one pass (one row per lead),
    compared with ``leads.rule_points``; for the leads where they differ, ``leads.score`` moves by the sum of
    the rules' deltas, ``lead_temperature`` follows, ``rule_points`` is rewritten, and one history row
    records the change (``rule_deltas``: ``{rule id: delta}``; ``rule_id`` when exactly one rule moved; the
    reason names every rule that moved). Contributions of rules no longer active are taken back.

    A lead whose ``rule_points`` changed since the statement's snapshot (scored concurrently) is left alone:
    its scorer's result stands. Returns ``(lead_id, previous, score, previous_temperature, temperature,
    assigned_to_id, history)`` per lead written. Parameters: ``org``, ``event_id``, and ``lead_ids`` (scope
    ids) or ``lo``/``hi`` (scope range: lead ids from lo to hi inclusive). ``names``: every rule's name by id
    (for reasons about inactive rules)."""
    binds = _Binds()
    if scope == "ids":
        leads_filter = " AND l.id = ANY(CAST(:lead_ids AS integer[]))"
    else:
        leads_filter = " AND l.id BETWEEN :lo AND :hi"
    ctes, from_clause, exprs = _targets(rules, binds=binds, leads_filter=leads_filter)
    prefix = binds(reason_prefix)
    active_keys = binds([str(int(x.rule.id)) for x in exprs])
    all_names = binds(json.dumps({str(k): v for k, v in (names or {}).items()}))
    columns = ["l.id", "l.rule_points AS old", "l.lead_temperature"]
    for i, x in enumerate(exprs):
        key = str(int(x.rule.id))
        columns += [
            f"{x.points} AS p{i}",
            f"{x.firings} AS n{i}",
            f"{x.fired_at} AS t{i}",
            f"coalesce((l.rule_points -> '{key}' ->> 0)::int, 0) AS o{i}",
        ]
    # contributions of rules that are no longer active (disabled): taken back
    columns.append(f"l.rule_points - CAST({active_keys} AS text[]) AS gone")
    calc = f"SELECT {', '.join(columns)} {from_clause}"
    entries: list[tuple[str, str]] = []
    deltas: list[tuple[str, str]] = []
    moved: list[str] = []
    moved_count: list[str] = []
    moved_id: list[str] = []
    old_sum: list[str] = []
    new_sum: list[str] = []
    in_order = sorted(enumerate(exprs), key=lambda ix: (-ix[1].rule.priority, ix[1].rule.id))
    for i, x in in_order:  # reasons name the rules in priority order
        key = str(int(x.rule.id))
        entries.append(
            (
                key,
                f"CASE WHEN c.p{i} <> 0 OR c.n{i} <> 0 THEN '[' || c.p{i} || ',' || c.n{i} || ',' || c.t{i} || ']' END",
            )
        )
        deltas.append((key, f"CAST(nullif(c.p{i} - c.o{i}, 0) AS text)"))
        old_sum.append(f"c.o{i}")
        new_sum.append(f"c.p{i}")
        moved_count.append(f"(c.p{i} <> c.o{i})::int")
        moved_id.append(f"CASE WHEN c.p{i} <> c.o{i} THEN {int(x.rule.id)} END")
        name = binds(x.rule.name)
        moved.append(
            f"CASE WHEN c.p{i} <> c.o{i} THEN 'rule \"' || {name} || '\" ' || "
            f"CASE WHEN NOT c.old ? '{key}' THEN 'matched' WHEN c.p{i} = 0 THEN 'no longer applies' "
            f"ELSE 'changed' END || CASE WHEN c.n{i} > 1 THEN ' (' || c.n{i} || ' times)' ELSE '' END END"
        )
    gone_points = "FROM jsonb_each(c.gone) g WHERE (g.value ->> 0)::int <> 0"
    gone_sum = f"(CASE WHEN c.gone = '{{}}' THEN 0 ELSE (SELECT coalesce(sum((g.value ->> 0)::int), 0) {gone_points}) END)"
    gone_count = f"(CASE WHEN c.gone = '{{}}' THEN 0 ELSE (SELECT count(*) {gone_points}) END)"
    gone_id = f"(CASE WHEN c.gone = '{{}}' THEN NULL ELSE (SELECT min(g.key::int) {gone_points}) END)"
    gone_deltas = (
        f"(CASE WHEN c.gone = '{{}}' THEN '{{}}' ELSE (SELECT coalesce(jsonb_object_agg(g.key, "
        f"-(g.value ->> 0)::int), '{{}}') {gone_points}) END)"
    )
    gone_text = (
        f"(CASE WHEN c.gone = '{{}}' THEN NULL ELSE (SELECT string_agg('rule \"' || "
        f"coalesce(CAST({all_names} AS jsonb) ->> g.key, '#' || g.key) || '\" no longer applies', ', ' "
        f"ORDER BY g.key) {gone_points}) END)"
    )
    new_object = _object(entries) if entries else "CAST('{}' AS jsonb)"
    delta_object = _object(deltas) if deltas else "CAST('{}' AS jsonb)"
    total_new = " + ".join(new_sum) if new_sum else "0"
    total_old = " + ".join(old_sum) if old_sum else "0"
    count = " + ".join([*moved_count, gone_count])
    single = f"coalesce({', '.join([*moved_id, gone_id])})"
    reason = f"left({prefix} || coalesce({_joined([*moved, gone_text])}, 'rules unchanged'), 500)"
    temperature = temperature_sql("l.lead_temperature", "l.score + j.delta", thresholds)
    # MATERIALIZED: each rule's expressions, the new object and the deltas are computed once per lead
    # (inlined, every reference would evaluate them again)
    with_clause = ", ".join([*ctes, f"calc AS MATERIALIZED ({calc})"])
    sql = f"""
WITH {with_clause},
cmp AS MATERIALIZED (SELECT c.*, {new_object} AS new FROM calc c),
j AS MATERIALIZED (
  SELECT c.id, c.old, c.lead_temperature, c.new,
         ({total_new}) - ({total_old}) - {gone_sum} AS delta,
         {delta_object} || {gone_deltas} AS rd,
         {reason} AS reason,
         CASE WHEN {count} = 1 THEN {single} END AS rule_id
  FROM cmp c
  WHERE c.new IS DISTINCT FROM c.old
),
upd AS (
  UPDATE leads l SET score = l.score + j.delta,
         lead_temperature = CASE WHEN j.delta <> 0 THEN {temperature} ELSE l.lead_temperature END,
         rule_points = j.new
  FROM j
  WHERE l.organization_id = :org AND l.id = j.id AND l.rule_points = j.old
    AND l.deleted_at IS NULL AND l.score_locked_at IS NULL{leads_filter}
  RETURNING l.id, l.score - j.delta AS previous, l.score, j.lead_temperature AS previous_temperature,
            l.lead_temperature, l.assigned_to_id, j.delta, j.rd, j.reason, j.rule_id
),
hist AS (
  INSERT INTO lead_score_history
    (organization_id, lead_id, previous_score, new_score, score_change, reason, rule_id, kind, event_id,
     rule_deltas)
  SELECT :org, u.id, u.previous, u.score, u.delta, u.reason, u.rule_id, 'rule', CAST(:event_id AS bigint), u.rd
  FROM upd u WHERE u.rd <> '{{}}'
)
SELECT u.id, u.previous, u.score, u.previous_temperature, u.lead_temperature, u.assigned_to_id,
       u.rd <> '{{}}' AS history
FROM upd u
"""
    return Compiled(sql, binds.params)
