"""The scoring rules language without a database: validation messages (path and reason), the safe regex
subset, and the reference evaluator's operators, repeat policies and windows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from lma_bot.scoring.regex import UnsafePattern, check_pattern, compile_python
from lma_bot.scoring.rules import (
    EventFact,
    InvalidRule,
    Rule,
    evaluate,
    field_matches,
    parse_criteria,
    validate_rule,
)

T0 = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)


def _refused(criteria: Any, **rule: Any) -> str:
    with pytest.raises(InvalidRule) as caught:
        validate_rule(criteria=criteria, points=rule.pop("points", 5), **rule)
    return str(caught.value)


@pytest.mark.parametrize(
    ("criteria", "rule", "message"),
    [
        (
            {
                "all": [
                    {"field": "source", "op": "eq", "value": "x"},
                    {"field": "source", "op": "eqq", "value": "x"},
                ]
            },
            {},
            'criteria.all[1].op: unknown operator "eqq"; operators are eq, neq, in, not_in, contains, starts_with, '
            "gt, gte, lt, lte, exists, matches",
        ),
        ({"any": []}, {}, "criteria.any: needs at least one condition"),
        ([], {}, "criteria: expected an object, got a list"),
        (
            {"all": [], "any": []},
            {},
            "criteria: expected exactly one of all, any, not, field, event (found all, any)",
        ),
        ({"field": "titel", "op": "eq", "value": "x"}, {}, 'criteria.field: unknown field "titel"'),
        (
            {"field": "job_title", "op": "gt", "value": 3},
            {},
            "criteria.op: gt compares numbers; job_title is text",
        ),
        (
            {"field": "custom_fields.size", "op": "gt", "value": "3"},
            {},
            "criteria.value: gt needs a number, got a string",
        ),
        (
            {"field": "tags", "op": "eq", "value": "vip"},
            {},
            "criteria.op: tags supports contains, in, not_in, exists, not eq",
        ),
        (
            {"field": "source", "op": "in", "value": []},
            {},
            "criteria.value: in needs a non-empty list, got a list",
        ),
        (
            {"field": "source", "op": "in", "value": ["a", 3]},
            {},
            "criteria.value[1]: source is text; expected a string",
        ),
        (
            {"field": "source", "op": "exists", "value": "yes"},
            {},
            "criteria.value: exists takes true or false",
        ),
        (
            {"field": "do_not_contact", "op": "contains", "value": "x"},
            {},
            "criteria.op: do_not_contact is true/false",
        ),
        ({"field": "source", "op": "eq"}, {}, "criteria.value: missing"),
        ({"field": "source", "op": "eq", "value": "x", "extra": 1}, {}, "criteria.extra: unknown key"),
        ({"not": {"event": "email opened"}}, {}, "criteria.not.event: expected an event name"),
        ({"event": "email_opened", "count": 0}, {}, "criteria.count: expected a whole number from 1 to 1000"),
        (
            {"event": "email_opened", "within_days": 0},
            {},
            "criteria.within_days: expected a whole number of days",
        ),
        (
            {"field": "email", "op": "matches", "value": "(a+)+$"},
            {},
            "criteria.value: unsupported pattern: a repeated group",
        ),
        (
            {"field": "email", "op": "matches", "value": r"(a)\1"},
            {},
            "criteria.value: unsupported pattern: backreferences",
        ),
        (
            {"field": "email", "op": "matches", "value": "(?=a)"},
            {},
            "criteria.value: unsupported pattern: lookaround",
        ),
        (
            {"field": "email", "op": "matches", "value": "a" * 201},
            {},
            "criteria.value: at most 200 characters",
        ),
        ({"all": []}, {"points": 0}, "points: expected a whole number from -1000 to 1000, not 0"),
        ({"all": []}, {"repeat_policy": "always"}, 'repeat_policy: unknown policy "always"'),
        (
            {"event": "email_opened"},
            {"repeat_policy": "at_most"},
            "repeat_limit: at_most needs a limit from 1 to 1000",
        ),
        ({"event": "email_opened"}, {"repeat_limit": 3}, "repeat_limit: only at_most takes a limit"),
        (
            {"field": "source", "op": "eq", "value": "x"},
            {"repeat_policy": "once_per_event"},
            "repeat_policy: once_per_event needs an event condition",
        ),
    ],
)
def test_invalid_rules_are_refused_with_path_and_reason(
    criteria: Any, rule: dict[str, Any], message: str
) -> None:
    assert _refused(criteria, **rule).startswith(message)


def test_deeply_nested_or_huge_criteria_are_refused() -> None:
    node: dict[str, Any] = {"all": []}
    for _ in range(10):
        node = {"not": node}
    assert "nested deeper than 8 levels" in _refused(node)
    many = {"any": [{"field": "source", "op": "eq", "value": str(i)} for i in range(70)]}
    assert "at most 64 conditions" in _refused(many)


@pytest.mark.parametrize(
    "pattern",
    [r"^vp\b", "(a|aa)+", "(a*)*", "a{1,1000}", "(?i)x", "[abc", "a)", r"a*b*c*d*e*", "a*?", r"\p{L}"],
)
def test_unsafe_or_unsupported_patterns(pattern: str) -> None:
    with pytest.raises(UnsafePattern):
        check_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        (r"^(vp|head) of", "VP of Sales", True),
        (r"@(gmail|yahoo)\.com$", "ann@gmail.com", True),
        (r"@(gmail|yahoo)\.com$", "ann@gmail.com\n", False),  # $ is the very end, as in PostgreSQL
        (r"^[a-z]+\d{2,3}$", "abc12", True),
        (r"^[a-z]+\d{2,3}$", "abc1", False),
        ("a.b", "a\nb", True),  # . matches a newline, as in PostgreSQL
        (r"(ab)+c", "ababc", True),
        (r"[^0-9]x", "9x", False),
    ],
)
def test_safe_patterns_match_like_postgresql(pattern: str, text: str, found: bool) -> None:
    check_pattern(pattern)
    assert (compile_python(pattern).search(text) is not None) is found


LEAD: dict[str, Any] = {
    "email": "ann@acme.com",
    "job_title": "VP of Sales",
    "source": "LinkedIn",
    "company": None,
    "status": "new",
    "tags": ["vip", "q4"],
    "do_not_contact": False,
    "custom_fields": {
        "employees": 250,
        "plan": "Pro",
        "trial": True,
        "ratio": 0.5,
        "blank": "",
        "none": None,
    },
}


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("source", "eq", "linkedin", True),
        ("source", "eq", "twitter", False),
        ("company", "eq", "x", False),
        ("source", "neq", "twitter", True),
        ("company", "neq", "x", True),  # missing: neq holds
        ("source", "in", ["Twitter", "LINKEDIN"], True),
        ("company", "in", ["x"], False),
        ("source", "not_in", ["twitter"], True),
        ("company", "not_in", ["x"], True),
        ("job_title", "contains", "of sa", True),
        ("job_title", "starts_with", "vp", True),
        ("job_title", "starts_with", "of", False),
        ("job_title", "matches", r"^(vp|head) of", True),
        ("email", "exists", True, True),
        ("company", "exists", True, False),
        ("company", "exists", False, True),
        ("tags", "contains", "VIP", True),
        ("tags", "in", ["x", "q4"], True),
        ("tags", "not_in", ["x", "q4"], False),
        ("tags", "exists", True, True),
        ("do_not_contact", "eq", False, True),
        ("custom_fields.employees", "gt", 200, True),
        ("custom_fields.employees", "gte", 250, True),
        ("custom_fields.employees", "lt", 250, False),
        ("custom_fields.employees", "lte", 250.0, True),
        ("custom_fields.ratio", "eq", 0.5, True),
        ("custom_fields.plan", "gt", 1, False),  # not a number: fails
        ("custom_fields.employees", "eq", 250, True),
        ("custom_fields.employees", "eq", "250", False),  # types must agree
        ("custom_fields.plan", "eq", "pro", True),
        ("custom_fields.trial", "eq", True, True),
        ("custom_fields.trial", "eq", 1, False),
        ("custom_fields.plan", "in", ["basic", "PRO"], True),
        ("custom_fields.plan", "contains", "r", True),
        ("custom_fields.employees", "contains", "2", False),
        ("custom_fields.blank", "exists", True, False),
        ("custom_fields.none", "exists", True, False),
        ("custom_fields.missing", "neq", "x", True),
    ],
)
def test_every_operator(field: str, op: str, value: Any, expected: bool) -> None:
    node = parse_criteria({"field": field, "op": op, "value": value})
    assert field_matches(node, LEAD) is expected  # type: ignore[arg-type]


def _events(*spec: tuple[str, float]) -> list[EventFact]:
    return [EventFact(name, T0 + dt.timedelta(days=days), i + 1) for i, (name, days) in enumerate(spec)]


def _rule(criteria: Any, points: int = 10, policy: str = "once_per_lead", limit: int | None = None) -> Rule:
    node = validate_rule(criteria=criteria, points=points, repeat_policy=policy, repeat_limit=limit)
    return Rule(id=1, name="r", points=points, criteria=node, repeat_policy=policy, repeat_limit=limit)


def test_repeat_policies_and_windows() -> None:
    opens = _events(("email_opened", 0), ("email_opened", 1), ("email_opened", 2), ("email_opened", 20))
    assert evaluate(_rule({"event": "email_opened"}), LEAD, opens).points == 10
    assert evaluate(_rule({"event": "email_opened"}, policy="once_per_event"), LEAD, opens).points == 40
    assert evaluate(_rule({"event": "email_opened"}, policy="at_most", limit=3), LEAD, opens).points == 30
    three_in_week = {"event": "email_opened", "count": 3, "within_days": 7}
    got = evaluate(_rule(three_in_week, policy="once_per_event"), LEAD, opens)
    assert (got.points, got.firings, got.last_fired_at) == (10, 1, T0 + dt.timedelta(days=2))
    # the window's edge is inclusive: exactly 7 days apart still counts
    edge = _events(("email_opened", 0), ("email_opened", 7))
    assert evaluate(_rule({"event": "email_opened", "count": 2, "within_days": 7}), LEAD, edge).firings == 1
    late = _events(("email_opened", 0), ("email_opened", 7.001))
    assert evaluate(_rule({"event": "email_opened", "count": 2, "within_days": 7}), LEAD, late).firings == 0
    # field conditions gate event rules; a state rule scores while it matches
    gated = {"all": [{"event": "email_clicked"}, {"field": "source", "op": "eq", "value": "twitter"}]}
    assert evaluate(_rule(gated), LEAD, _events(("email_clicked", 0))).points == 0
    assert (
        evaluate(_rule({"field": "source", "op": "eq", "value": "linkedin"}, points=-5), LEAD, []).points
        == -5
    )
