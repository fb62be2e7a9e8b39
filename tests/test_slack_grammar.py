from __future__ import annotations

import pytest

from handlers.slack.grammar import (
    USAGE,
    Assign,
    Create,
    Help,
    ListLeads,
    Note,
    RuleActive,
    RuleForm,
    Rules,
    Score,
    ScoreAdjust,
    ScoreLock,
    Show,
    Status,
    UsageError,
    parse,
)
from lma_bot.leads.schemas import LeadQuery, ListFilter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("help", Help()),
        ("HELP", Help()),
        ("create", Create()),
        (
            "create ann@acme.com Ann Lee company=Acme source=event tags=q4,Inbound",
            Create(email="ann@acme.com", name="Ann Lee", company="Acme", source="event", tags=["q4", "Inbound"]),
        ),
        ('create bo@x.io company=\u201cBig Co\u201d', Create(email="bo@x.io", company="Big Co")),
        ("create bo@x.io \u201cBo Diddley\u201d", Create(email="bo@x.io", name="Bo Diddley")),
        ("show 42", Show("42")),
        ("show ann@acme.com", Show("ann@acme.com")),
        ("list", ListLeads(LeadQuery())),
        ("list mine", ListLeads(LeadQuery(filter=ListFilter.MINE))),
        ("list unassigned", ListLeads(LeadQuery(filter=ListFilter.UNASSIGNED))),
        ("list status:Qualified", ListLeads(LeadQuery(filter=ListFilter.STATUS, value="qualified"))),
        ("list tag:q4", ListLeads(LeadQuery(filter=ListFilter.TAG, value="q4"))),
        ("list hot", ListLeads(LeadQuery(filter=ListFilter.HOT))),
        ("find acme corp", ListLeads(LeadQuery(text="acme corp"))),
        ("status 42 contacted", Status("42", "contacted", None)),
        ("status 42 Lost went with a competitor", Status("42", "lost", "went with a competitor")),
        (
            "note 42 call <@U0MGR|mia> and <@U0REP>",
            Note("42", "call <@U0MGR|mia> and <@U0REP>", private=False, mentions=["U0MGR", "U0REP"]),
        ),
        ("note 42 --private budget is 10k", Note("42", "budget is 10k", private=True, mentions=[])),
        ("assign 42 <@U1|ann> takes over", Assign(ref="42", slack_user_id="U1", reason="takes over")),
        ("score 42", Score("42")),
        ("score 42 adjust +10 met the CEO", ScoreAdjust("42", amount="+10", reason="met the CEO")),
        ("score #42 adjust =50 reset", ScoreAdjust("#42", amount="=50", reason="reset")),
        ("score 42 lock", ScoreLock("42", lock=True)),
        ("rules", Rules()),
        ("rules add", RuleForm(None)),
        ("rules edit 3", RuleForm(3)),
        ("rules disable #3", RuleActive(3, active=False)),
    ],
)  # fmt: skip
def test_parses(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "subcommand", "problem"),
    [
        ("launch", None, "I don't know `launch`"),
        ("show", "show", "give exactly one lead: its number or email"),
        ("show 1 2", "show", "give exactly one lead: its number or email"),
        ("create Ann", "create", "start with the lead's email; `Ann` is not one"),
        (
            "create a@b.co colour=red",
            "create",
            "unknown option `colour=`; options are company=, source=, tags=",
        ),
        ("create a@b.co company=X Ann", "create", "put the name before the options"),
        ('create a@b.co company="Acme', "create", "a quote is not closed"),
        ("list everything", "list", "unknown filter `everything`"),
        ("list status:", "list", "unknown filter `status:`"),
        ("find", "find", "tell me what to look for"),
        ("status 42", "status", "give the lead and the new status"),
        ("note 42", "note", "give the lead and the note text"),
        ("note --private 42 x", "note", "the lead comes first, then --private"),
    ],
)
def test_usage_errors_carry_the_right_usage_line(text: str, subcommand: str | None, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert caught.value.problem == problem
    assert caught.value.subcommand == subcommand
    if subcommand:
        assert caught.value.usage == f"Usage: `{USAGE[subcommand]}`"
    else:
        assert all(line in caught.value.usage for line in USAGE.values())
