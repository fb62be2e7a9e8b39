"""Rules compiled to SQL: every active rule's contribution to a set of leads (or every lead of the
organization), computed in one statement, and applied as history rows, ``lead_rule_scores`` and
``leads.score`` in one more.

Incremental scoring (one lead, at an event or a change) and ``lma-bot rescore`` (every lead) run the *same*
statement with a different lead filter, so they cannot disagree. Semantics are those of
:func:`lma_bot.scoring.rules.evaluate` (the tests compare the two on random rules and event streams).

Only validated rules are compiled: field names come from the allowlist, numbers are validated ints (inlined),
and every user-supplied string travels as a bind parameter.
"""

from __future__ import annotations

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


def targets_sql(rules: Sequence[Rule], *, binds: _Binds, leads_filter: str) -> str:
    """``SELECT lead_id, rule_id, points, firings, last_fired_at`` for every (scorable lead, active rule)
    with a non-zero contribution or firing count. ``leads_filter`` is an extra condition on ``l``."""
    active = [r for r in rules if r.is_active]
    event_rules = [r for r in active if r.is_event_rule]
    field_rules = [r for r in active if not r.is_event_rule]
    scorable = "l.deleted_at IS NULL AND l.score_locked_at IS NULL"
    ctes: list[str] = []
    values: list[str] = []
    lateral: list[str] = []
    if event_rules:
        windows: dict[int | None, str] = {}
        counts: dict[Event, str] = {}
        columns: list[str] = []
        for rule in event_rules:
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
        name_list = ", ".join(binds(n) for n in names)
        ctes.append(
            "ev AS (SELECT e.lead_id, e.event_type, e.occurred_at, "
            + ", ".join(columns)
            + " FROM lead_events e JOIN leads l ON l.organization_id = e.organization_id AND l.id = e.lead_id"
            + f" WHERE e.organization_id = :org AND e.event_type IN ({name_list}) AND {scorable}{leads_filter}"
            + " WINDOW "
            + ", ".join(window_defs)
            + ")"
        )
        aggregates = []
        for i, rule in enumerate(event_rules):
            triggers = ", ".join(binds(n) for n in rule.event_names)
            condition = f"ev.event_type IN ({triggers}) AND {node_sql(rule.criteria, binds, counts)}"
            aggregates.append(f"count(*) FILTER (WHERE {condition}) AS f{i}")
            aggregates.append(f"max(ev.occurred_at) FILTER (WHERE {condition}) AS t{i}")
        ctes.append(
            "fire AS (SELECT ev.lead_id, "
            + ", ".join(aggregates)
            + " FROM ev JOIN leads l ON l.organization_id = :org AND l.id = ev.lead_id GROUP BY ev.lead_id)"
        )
        for i, rule in enumerate(event_rules):
            firings = f"coalesce(f.f{i}, 0)"
            if rule.repeat_policy == "once_per_lead":
                capped = f"LEAST({firings}, 1)"
            elif rule.repeat_policy == "at_most":
                capped = f"LEAST({firings}, {int(rule.repeat_limit or 0)})"
            else:
                capped = firings
            values.append(f"({int(rule.id)}, {int(rule.points)} * {capped}, {firings}, f.t{i})")
    for i, rule in enumerate(field_rules):
        lateral.append(f"{node_sql(rule.criteria, binds, {})} AS m{i}")
        values.append(
            f"({int(rule.id)}, CASE WHEN m.m{i} THEN {int(rule.points)} ELSE 0 END, "
            f"CASE WHEN m.m{i} THEN 1 ELSE 0 END, CAST(NULL AS timestamptz))"
        )
    if not values:
        return (
            "SELECT CAST(NULL AS integer) AS lead_id, CAST(NULL AS integer) AS rule_id, 0 AS points, "
            "0 AS firings, CAST(NULL AS timestamptz) AS last_fired_at WHERE false"
        )
    joins = ""
    if event_rules:
        joins += " LEFT JOIN fire f ON f.lead_id = l.id"
    if field_rules:
        joins += " CROSS JOIN LATERAL (SELECT " + ", ".join(lateral) + ") m"
    with_clause = ("WITH " + ", ".join(ctes) + " ") if ctes else ""
    return (
        f"{with_clause}SELECT l.id AS lead_id, x.rule_id, x.points, x.firings, x.last_fired_at FROM leads l{joins}"
        " CROSS JOIN LATERAL (VALUES " + ", ".join(values) + ") AS x(rule_id, points, firings, last_fired_at)"
        f" WHERE l.organization_id = :org AND {scorable}{leads_filter} AND (x.points <> 0 OR x.firings <> 0)"
    )


def apply_sql(
    rules: Sequence[Rule], thresholds: Thresholds, *, scope: Literal["ids", "range"], reason_prefix: str
) -> Compiled:
    """One statement: the targets, diffed with ``lead_rule_scores``; a history row per changed rule and lead
    (chained previous/new in priority order), the contributions upserted/deleted, ``leads.score`` and
    ``lead_temperature`` updated. Returns ``(lead_id, previous, score, previous_temperature, temperature,
    assigned_to_id)`` per lead whose score changed. Parameters: ``org``, ``event_id``, and ``lead_ids`` (scope
    ids) or ``lo``/``hi`` (scope range: lead ids from lo to hi inclusive)."""
    binds = _Binds()
    if scope == "ids":
        leads_filter = " AND l.id = ANY(CAST(:lead_ids AS integer[]))"
        cur_filter = " AND s.lead_id = ANY(CAST(:lead_ids AS integer[]))"
    else:
        leads_filter = " AND l.id BETWEEN :lo AND :hi"
        cur_filter = " AND s.lead_id BETWEEN :lo AND :hi"
    targets = targets_sql(rules, binds=binds, leads_filter=leads_filter)
    prefix = binds(reason_prefix)
    temperature = temperature_sql("b.lead_temperature", "l.score + b.delta", thresholds)
    sql = f"""
WITH target AS ({targets}),
cur AS (
  SELECT s.lead_id, s.rule_id, s.points, s.firings, s.last_fired_at
  FROM lead_rule_scores s JOIN leads l ON l.organization_id = s.organization_id AND l.id = s.lead_id
  WHERE s.organization_id = :org AND l.deleted_at IS NULL AND l.score_locked_at IS NULL{cur_filter}
),
diff AS (
  SELECT coalesce(t.lead_id, c.lead_id) AS lead_id, coalesce(t.rule_id, c.rule_id) AS rule_id,
         coalesce(t.points, 0) AS points, coalesce(t.firings, 0) AS firings,
         coalesce(t.last_fired_at, CASE WHEN t.firings > 0 THEN coalesce(c.last_fired_at, now()) END)
           AS last_fired_at,
         coalesce(t.points, 0) - coalesce(c.points, 0) AS delta,
         t.lead_id IS NULL AS gone, c.lead_id IS NULL AS added
  FROM target t FULL JOIN cur c ON c.lead_id = t.lead_id AND c.rule_id = t.rule_id
  WHERE t.lead_id IS NULL OR c.lead_id IS NULL OR t.points <> c.points OR t.firings <> c.firings
     OR coalesce(t.last_fired_at, c.last_fired_at) IS DISTINCT FROM c.last_fired_at
),
base AS (
  SELECT l.id AS lead_id, l.score, l.lead_temperature, sum(d.delta) AS delta
  FROM diff d JOIN leads l ON l.organization_id = :org AND l.id = d.lead_id
  GROUP BY l.id, l.score, l.lead_temperature
),
hist AS (
  INSERT INTO lead_score_history
    (organization_id, lead_id, previous_score, new_score, score_change, reason, rule_id, kind, event_id)
  SELECT :org, h.lead_id, h.running - h.delta, h.running, h.delta,
         left({prefix} || 'rule "' || h.name || '" ' ||
              CASE WHEN h.added THEN 'matched' WHEN h.points = 0 THEN 'no longer applies' ELSE 'changed' END
              || CASE WHEN h.firings > 1 THEN ' (' || h.firings || ' times)' ELSE '' END, 500),
         h.rule_id, 'rule', CAST(:event_id AS bigint)
  FROM (
    SELECT d.*, r.name, r.priority,
           b.score + sum(d.delta) OVER (PARTITION BY d.lead_id ORDER BY r.priority DESC, d.rule_id) AS running
    FROM diff d JOIN base b ON b.lead_id = d.lead_id
    JOIN lead_scoring_rules r ON r.organization_id = :org AND r.id = d.rule_id
    WHERE d.delta <> 0
  ) h
  ORDER BY h.lead_id, h.priority DESC, h.rule_id
),
upserted AS (
  INSERT INTO lead_rule_scores (organization_id, lead_id, rule_id, points, firings, last_fired_at)
  SELECT :org, d.lead_id, d.rule_id, d.points, d.firings, d.last_fired_at FROM diff d WHERE NOT d.gone
  ON CONFLICT (organization_id, lead_id, rule_id) DO UPDATE
    SET points = EXCLUDED.points, firings = EXCLUDED.firings, last_fired_at = EXCLUDED.last_fired_at,
        updated_at = now()
),
removed AS (
  DELETE FROM lead_rule_scores s USING diff d
  WHERE s.organization_id = :org AND s.lead_id = d.lead_id AND s.rule_id = d.rule_id AND d.gone
)
UPDATE leads l SET score = l.score + b.delta, lead_temperature = {temperature}
FROM base b
WHERE l.organization_id = :org AND l.id = b.lead_id AND b.delta <> 0
RETURNING l.id, l.score - b.delta, l.score, b.lead_temperature, l.lead_temperature, l.assigned_to_id
"""
    return Compiled(sql, binds.params)
