"""The scoring rules language: parse and validate criteria (errors carry the JSON path), and evaluate them
in Python (the reference the SQL compiler in :mod:`lma_bot.scoring.compile` is tested against).

A criteria document is one node:

- ``{"all": [node, ...]}`` (true when empty), ``{"any": [node, ...]}``, ``{"not": node}``;
- a field condition ``{"field": F, "op": OP, "value": V}`` on a lead column (``email``, ``first_name``,
  ``last_name``, ``phone``, ``company``, ``job_title``, ``website``, ``linkedin_url``, ``source``,
  ``status``, ``email_status``, ``tags``, ``do_not_contact``) or ``custom_fields.<key>``; OP is one of
  eq, neq, in, not_in, contains, starts_with, gt, gte, lt, lte, exists, matches. Text compares
  case-insensitively; a missing value fails every condition except neq and not_in (and ``exists: false``);
  gt/gte/lt/lte compare numbers of ``custom_fields``;
- an event condition ``{"event": NAME, "count": N, "within_days": D}``: at least N (default 1) events NAME
  in the D days (default: ever) up to the event being scored.

**When a rule scores.** A rule without event conditions is a *state* rule: it gives its points while the lead
matches (and takes them back when it stops matching); its repeat policy is ``once_per_lead``. A rule with
event conditions scores *at events*: at every event whose name one of its event conditions names, the whole
criteria is evaluated (field conditions on the lead as it is now, event conditions over the lead's events up
to that one); each event where it holds is a *firing*. Repeat policy: ``once_per_lead`` gives the points once
if it ever fired, ``once_per_event`` once per firing, ``at_most`` N times at most.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from lma_bot.errors import InvalidInput
from lma_bot.scoring.regex import UnsafePattern, check_pattern, compile_python

TEXT_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "job_title",
    "website",
    "linkedin_url",
    "source",
    "status",
    "email_status",
)
TAG_FIELD = "tags"
BOOL_FIELDS = ("do_not_contact",)
CUSTOM_PREFIX = "custom_fields."
OPERATORS = (
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
    "matches",
)
TAG_OPERATORS = ("contains", "in", "not_in", "exists")
BOOL_OPERATORS = ("eq", "neq", "exists")
NUMBER_OPERATORS = ("gt", "gte", "lt", "lte")
REPEAT_POLICIES = ("once_per_lead", "once_per_event", "at_most")
EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
CUSTOM_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .-]{0,63}$")
MAX_DEPTH = 8
MAX_NODES = 64
MAX_LIST = 100
MAX_TEXT = 200
MAX_POINTS = 1000
MAX_COUNT = 1000
MAX_WINDOW_DAYS = 3650
MAX_REPEAT = 1000

#: Event names lma-bot itself records (n8n may report any other name matching EVENT_NAME).
KNOWN_EVENTS = (
    "email_sent",
    "email_delivered",
    "email_opened",
    "email_clicked",
    "email_replied",
    "email_bounced",
    "email_complained",
    "email_unsubscribed",
    "status_changed",
    "note_added",
    "meeting_booked",
)

Scalar = str | int | float | bool


class InvalidRule(InvalidInput):
    """A rule refused, with where (``criteria.all[1].op``) and why (``unknown operator "eqq"``)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}", field=path)


# ---------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Field:
    field: str  # a column name, or "custom_fields"
    key: str | None  # the custom_fields key
    op: str
    value: Any

    @property
    def kind(self) -> Literal["text", "tags", "bool", "custom"]:
        if self.key is not None:
            return "custom"
        if self.field == TAG_FIELD:
            return "tags"
        if self.field in BOOL_FIELDS:
            return "bool"
        return "text"


@dataclass(frozen=True)
class Event:
    event: str
    count: int
    within_days: int | None


@dataclass(frozen=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Field | Event | All | AnyOf | Not


def events_of(node: Node) -> list[Event]:
    """The event conditions in ``node``, in document order."""
    if isinstance(node, Event):
        return [node]
    if isinstance(node, Field):
        return []
    if isinstance(node, Not):
        return events_of(node.item)
    return [e for item in node.items for e in events_of(item)]


@dataclass(frozen=True)
class Rule:
    """A validated rule as the engine uses it."""

    id: int
    name: str
    points: int
    criteria: Node
    repeat_policy: str = "once_per_lead"
    repeat_limit: int | None = None
    priority: int = 1
    is_active: bool = True

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.event for e in events_of(self.criteria)))

    @property
    def is_event_rule(self) -> bool:
        return bool(self.event_names)

    def capped(self, firings: int) -> int:
        """How many firings earn points under the repeat policy."""
        if self.repeat_policy == "once_per_lead":
            return min(firings, 1)
        if self.repeat_policy == "at_most":
            assert self.repeat_limit is not None
            return min(firings, self.repeat_limit)
        return firings


# ---------------------------------------------------------------- parsing and validation


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0

    def node(self, doc: Any, path: str, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise InvalidRule(path, f"nested deeper than {MAX_DEPTH} levels")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidRule(path, f"a rule can have at most {MAX_NODES} conditions")
        if not isinstance(doc, dict):
            raise InvalidRule(path, f"expected an object, got {_type_name(doc)}")
        kinds = [k for k in ("all", "any", "not", "field", "event") if k in doc]
        if len(kinds) != 1:
            found = ", ".join(sorted(doc)) or "nothing"
            raise InvalidRule(path, f"expected exactly one of all, any, not, field, event (found {found})")
        kind = kinds[0]
        if kind in ("all", "any"):
            self._keys(doc, {kind}, path)
            items = doc[kind]
            if not isinstance(items, list):
                raise InvalidRule(f"{path}.{kind}", f"expected a list, got {_type_name(items)}")
            if kind == "any" and not items:
                raise InvalidRule(f"{path}.any", "needs at least one condition")
            parsed = tuple(self.node(item, f"{path}.{kind}[{i}]", depth + 1) for i, item in enumerate(items))
            return All(parsed) if kind == "all" else AnyOf(parsed)
        if kind == "not":
            self._keys(doc, {"not"}, path)
            return Not(self.node(doc["not"], f"{path}.not", depth + 1))
        if kind == "event":
            return self.event(doc, path)
        return self.field(doc, path)

    @staticmethod
    def _keys(doc: dict[str, Any], allowed: set[str], path: str) -> None:
        for key in doc:
            if key not in allowed:
                raise InvalidRule(f"{path}.{key}", "unknown key; expected " + ", ".join(sorted(allowed)))

    def event(self, doc: dict[str, Any], path: str) -> Event:
        self._keys(doc, {"event", "count", "within_days"}, path)
        name = doc["event"]
        if not isinstance(name, str) or not EVENT_NAME.match(name):
            raise InvalidRule(
                f"{path}.event", "expected an event name (letters, digits, _ . : -), e.g. email_opened"
            )
        count = doc.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
            raise InvalidRule(f"{path}.count", f"expected a whole number from 1 to {MAX_COUNT}")
        within = doc.get("within_days")
        if within is not None and (
            not isinstance(within, int) or isinstance(within, bool) or not 1 <= within <= MAX_WINDOW_DAYS
        ):
            raise InvalidRule(
                f"{path}.within_days", f"expected a whole number of days from 1 to {MAX_WINDOW_DAYS}"
            )
        return Event(name, count, within)

    def field(self, doc: dict[str, Any], path: str) -> Field:
        self._keys(doc, {"field", "op", "value"}, path)
        name = doc["field"]
        if not isinstance(name, str):
            raise InvalidRule(f"{path}.field", f"expected a field name, got {_type_name(name)}")
        key: str | None = None
        if name.startswith(CUSTOM_PREFIX):
            key = name.removeprefix(CUSTOM_PREFIX)
            if not CUSTOM_KEY.match(key):
                raise InvalidRule(f"{path}.field", f"{name!r} is not a valid custom field key")
            column = "custom_fields"
        elif name in TEXT_FIELDS or name == TAG_FIELD or name in BOOL_FIELDS:
            column = name
        else:
            known = ", ".join((*TEXT_FIELDS, TAG_FIELD, *BOOL_FIELDS))
            raise InvalidRule(
                f"{path}.field", f'unknown field "{name}"; fields are {known}, custom_fields.<key>'
            )
        op = doc.get("op")
        if not isinstance(op, str) or op not in OPERATORS:
            shown = json.dumps(op) if op is not None else "missing"
            raise InvalidRule(f"{path}.op", f"unknown operator {shown}; operators are {', '.join(OPERATORS)}")
        if "value" not in doc:
            raise InvalidRule(f"{path}.value", "missing")
        cond = Field(column, key, op, doc["value"])
        self.value(cond, name, f"{path}.value", f"{path}.op")
        return cond

    def value(self, cond: Field, name: str, vpath: str, opath: str) -> None:
        op, value, kind = cond.op, cond.value, cond.kind
        if kind == "tags" and op not in TAG_OPERATORS:
            raise InvalidRule(opath, f"tags supports {', '.join(TAG_OPERATORS)}, not {op}")
        if kind == "bool" and op not in BOOL_OPERATORS:
            raise InvalidRule(
                opath, f"{name} is true/false and supports {', '.join(BOOL_OPERATORS)}, not {op}"
            )
        if kind == "text" and op in NUMBER_OPERATORS:
            raise InvalidRule(opath, f"{op} compares numbers; {name} is text (use custom_fields.<key>)")
        if op == "exists":
            if not isinstance(value, bool):
                raise InvalidRule(vpath, f"exists takes true or false, got {_type_name(value)}")
            return
        if op in NUMBER_OPERATORS:
            if not _is_number(value):
                raise InvalidRule(vpath, f"{op} needs a number, got {_type_name(value)}")
            return
        if op in ("contains", "starts_with", "matches") and kind != "tags":
            if not isinstance(value, str) or not value:
                raise InvalidRule(vpath, f"{op} needs a non-empty string, got {_type_name(value)}")
            if len(value) > MAX_TEXT:
                raise InvalidRule(vpath, f"at most {MAX_TEXT} characters")
            if op == "matches":
                try:
                    check_pattern(value)
                except UnsafePattern as exc:
                    raise InvalidRule(vpath, f"unsupported pattern: {exc}") from None
            return
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise InvalidRule(vpath, f"{op} needs a non-empty list, got {_type_name(value)}")
            if len(value) > MAX_LIST:
                raise InvalidRule(vpath, f"at most {MAX_LIST} values")
            for i, item in enumerate(value):
                self.scalar(kind, name, item, f"{vpath}[{i}]")
            return
        self.scalar(kind, name, value, vpath)  # eq, neq, tags contains

    @staticmethod
    def scalar(kind: str, name: str, value: Any, path: str) -> None:
        if kind in ("text", "tags"):
            if not isinstance(value, str):
                raise InvalidRule(path, f"{name} is text; expected a string, got {_type_name(value)}")
            if len(value) > MAX_TEXT:
                raise InvalidRule(path, f"at most {MAX_TEXT} characters")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise InvalidRule(path, f"{name} is true/false; got {_type_name(value)}")
        elif not isinstance(value, str | bool | int | float):
            raise InvalidRule(path, f"expected a string, number or boolean, got {_type_name(value)}")
        elif isinstance(value, str) and len(value) > MAX_TEXT:
            raise InvalidRule(path, f"at most {MAX_TEXT} characters")


def parse_criteria(doc: Any) -> Node:
    """The criteria tree of ``doc``; :class:`InvalidRule` names the first problem's path."""
    return _Parser().node(doc, "criteria", 0)


def validate_rule(
    *,
    criteria: Any,
    points: Any,
    repeat_policy: Any = "once_per_lead",
    repeat_limit: Any = None,
    priority: Any = 1,
) -> Node:
    """Check a whole rule; returns its parsed criteria."""
    node = parse_criteria(criteria)
    if not isinstance(points, int) or isinstance(points, bool) or points == 0 or abs(points) > MAX_POINTS:
        raise InvalidRule("points", f"expected a whole number from -{MAX_POINTS} to {MAX_POINTS}, not 0")
    if repeat_policy not in REPEAT_POLICIES:
        raise InvalidRule(
            "repeat_policy",
            f"unknown policy {json.dumps(repeat_policy)}; policies are {', '.join(REPEAT_POLICIES)}",
        )
    if repeat_policy == "at_most":
        if (
            not isinstance(repeat_limit, int)
            or isinstance(repeat_limit, bool)
            or not 1 <= repeat_limit <= MAX_REPEAT
        ):
            raise InvalidRule("repeat_limit", f"at_most needs a limit from 1 to {MAX_REPEAT}")
    elif repeat_limit is not None:
        raise InvalidRule("repeat_limit", f"only at_most takes a limit (the policy is {repeat_policy})")
    if repeat_policy != "once_per_lead" and not events_of(node):
        raise InvalidRule(
            "repeat_policy",
            f"{repeat_policy} needs an event condition; a rule on fields alone scores once while the lead matches",
        )
    if not isinstance(priority, int) or isinstance(priority, bool) or not -1000 <= priority <= 1000:
        raise InvalidRule("priority", "expected a whole number from -1000 to 1000")
    return node


# ---------------------------------------------------------------- evaluation (the reference)


@dataclass(frozen=True)
class EventFact:
    event_type: str
    occurred_at: dt.datetime
    id: int = 0


def _lower(value: str) -> str:
    return value.lower()


def _decimal(value: int | float) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _scalar_eq(actual: Any, wanted: Scalar) -> bool:
    if isinstance(wanted, bool):
        return isinstance(actual, bool) and actual == wanted
    if isinstance(wanted, str):
        return isinstance(actual, str) and _lower(actual) == _lower(wanted)
    return _is_number(actual) and _decimal(actual) == _decimal(wanted)


def _exists(cond: Field, actual: Any) -> bool:
    if cond.kind == "tags":
        return bool(actual)
    if cond.kind == "bool":
        return actual is not None
    return actual is not None and actual != ""


def field_matches(cond: Field, lead: Mapping[str, Any]) -> bool:
    if cond.key is not None:
        custom = lead.get("custom_fields") or {}
        actual = custom.get(cond.key)
    else:
        actual = lead.get(cond.field)
    op, value = cond.op, cond.value
    if op == "exists":
        return _exists(cond, actual) is bool(value)
    if op == "neq":
        return not field_matches(Field(cond.field, cond.key, "eq", value), lead)
    if op == "not_in":
        return not field_matches(Field(cond.field, cond.key, "in", value), lead)
    if cond.kind == "tags":
        tags = list(actual or [])
        if op == "contains":
            return _lower(value) in tags
        return any(_lower(v) in tags for v in value)  # in
    if op == "eq":
        return _scalar_eq(actual, value)
    if op == "in":
        return any(_scalar_eq(actual, v) for v in value)
    if op in NUMBER_OPERATORS:
        if not isinstance(actual, int | float) or isinstance(actual, bool):
            return False
        a, b = _decimal(actual), _decimal(value)
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
    if not isinstance(actual, str):
        return False
    if op == "contains":
        return _lower(value) in _lower(actual)
    if op == "starts_with":
        return _lower(actual).startswith(_lower(value))
    if op == "matches":
        return compile_python(value).search(actual) is not None
    raise AssertionError(op)


def _holds(node: Node, lead: Mapping[str, Any], counts: Mapping[Event, int]) -> bool:
    if isinstance(node, Field):
        return field_matches(node, lead)
    if isinstance(node, Event):
        return counts[node] >= node.count
    if isinstance(node, Not):
        return not _holds(node.item, lead, counts)
    if isinstance(node, All):
        return all(_holds(i, lead, counts) for i in node.items)
    return any(_holds(i, lead, counts) for i in node.items)


@dataclass(frozen=True)
class Contribution:
    points: int
    firings: int
    last_fired_at: dt.datetime | None


def evaluate(rule: Rule, lead: Mapping[str, Any], events: Sequence[EventFact]) -> Contribution:
    """What ``rule`` gives ``lead`` (a mapping of lead columns) with ``events`` (any order)."""
    if not rule.is_active:
        return Contribution(0, 0, None)
    conditions = events_of(rule.criteria)
    if not conditions:
        fired = _holds(rule.criteria, lead, {})
        return Contribution(rule.points if fired else 0, int(fired), None)
    names = set(rule.event_names)
    firings = 0
    last: dt.datetime | None = None
    for e in events:
        if e.event_type not in names:
            continue
        counts: dict[Event, int] = {}
        for cond in conditions:
            start = e.occurred_at - dt.timedelta(days=cond.within_days) if cond.within_days else None
            counts[cond] = sum(
                1
                for x in events
                if x.event_type == cond.event
                and x.occurred_at <= e.occurred_at
                and (start is None or x.occurred_at >= start)
            )
        if _holds(rule.criteria, lead, counts):
            firings += 1
            if last is None or e.occurred_at > last:
                last = e.occurred_at
    return Contribution(rule.points * rule.capped(firings), firings, last)


def score_of(rules: Iterable[Rule], lead: Mapping[str, Any], events: Sequence[EventFact]) -> int:
    """The sum of every rule's points for ``lead``: what its rule history adds up to."""
    return sum(evaluate(rule, lead, events).points for rule in rules)
